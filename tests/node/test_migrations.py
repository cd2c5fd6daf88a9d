"""The Alembic migrations build exactly the schema the code declares, on each backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from registry.kernel.database import current_revision, open_engine, upgrade
from registry.kernel.schema import metadata
from registry.rcd.schema import registry_feed


def test_migrations_match_the_declared_schema(database_url: str) -> None:
    engine = open_engine(database_url)
    upgrade(engine)
    upgrade(engine)  # a second run is a no-op
    assert current_revision(engine) == "0023"
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        assert differences == []
        assert connection.execute(select(registry_feed.c.id)).scalars().all() == [1]
    engine.dispose()
