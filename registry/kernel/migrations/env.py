"""Alembic environment: runs migrations on the engine handed over by registry.kernel.database."""

from __future__ import annotations

from alembic import context

from registry.kernel.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
