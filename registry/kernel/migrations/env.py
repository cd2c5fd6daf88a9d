"""Alembic environment: runs migrations on the engine handed over by registry.kernel.database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from registry.kernel.schema import metadata

# Nodes starting together on one PostgreSQL migrate one at a time: the others wait for this
# transaction's lock, then find the schema at its revision already.
MIGRATION_LOCK = 0x494F5053  # "IOPS"

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
