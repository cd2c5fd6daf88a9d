"""Reads through `reading` (registry/kernel/database.py), on each backend: they see what is
committed and nothing of a transaction still open; on PostgreSQL they cost no transaction
(autocommit), so psycopg keeps the statements it prepared, which every ROLLBACK of a read
through `engine.connect()` made it drop (DEALLOCATE ALL) and parse again."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, text

from registry.kernel.database import reading

# psycopg prepares a statement on its fifth execution on a connection (prepare_threshold).
PREPARED_AFTER = 5


def _prepared(connect: Callable[[], Connection]) -> int:
    """Runs one query a few times, each in its own read as the stores do, then counts the
    statements the connection holds prepared on the server."""
    query = text("SELECT count(*) FROM deposits WHERE state = :state")
    for _ in range(PREPARED_AFTER + 2):
        with connect() as connection:
            connection.execute(query, {"state": "RECEIVED"}).scalar_one()
    with connect() as connection:
        return int(
            connection.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
        )


def test_reads_see_what_is_committed_only(engine: Engine) -> None:
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE IF NOT EXISTS read_probe (value INTEGER)"))
        setup.execute(text("DELETE FROM read_probe"))
    writing = engine.connect()
    try:
        writing.execute(text("INSERT INTO read_probe VALUES (1)"))  # not committed yet
        with reading(engine) as connection:
            assert connection.execute(text("SELECT count(*) FROM read_probe")).scalar_one() == 0
        writing.commit()
        with reading(engine) as connection:
            assert connection.execute(text("SELECT count(*) FROM read_probe")).scalar_one() == 1
    finally:
        writing.close()
        with engine.begin() as cleanup:
            cleanup.execute(text("DROP TABLE read_probe"))


def test_reads_keep_the_statements_psycopg_prepared(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's reads take no transaction, and nothing is prepared on a server")
    engine.dispose()  # one pooled connection, used by every read below in turn
    assert _prepared(engine.connect) == 0  # each read's ROLLBACK dropped them
    engine.dispose()
    assert _prepared(lambda: reading(engine)) >= 1
