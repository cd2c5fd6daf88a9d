"""The Alembic migrations build exactly the schema the code declares, on each backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from registry.kernel.database import current_revision, open_engine, upgrade
from registry.kernel.schema import metadata
from registry.rcd.schema import registry_feed
from tests.databases import PG_URL, fresh_database


def test_migrations_match_the_declared_schema(database_url: str) -> None:
    engine = open_engine(database_url)
    upgrade(engine)
    upgrade(engine)  # a second run is a no-op
    assert current_revision(engine) == "0024"
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        assert differences == []
        assert connection.execute(select(registry_feed.c.id)).scalars().all() == [1]
    engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")
def test_nodes_starting_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    """Three processes migrating one empty PostgreSQL at once (nodes started together): one
    migrates, the others wait for its lock and find the schema done."""
    with fresh_database("postgresql", tmp_path) as url:
        code = ("from registry.kernel.database import open_engine, upgrade; "
                f"upgrade(open_engine({url!r}))")  # fmt: skip
        started = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
                   for _ in range(3)]  # fmt: skip
        ended = []
        for process in started:
            _, error = process.communicate(timeout=120)
            ended.append((process.returncode, error[-2000:]))
        assert [status for status, _ in ended] == [0, 0, 0], ended
        engine = open_engine(url)
        assert current_revision(engine) == "0024"
        engine.dispose()
