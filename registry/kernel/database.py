"""Database engines for the embedded SQLite default and PostgreSQL, and schema migration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while an import writes; NORMAL is durable across process crashes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# Connections a node's engine keeps, and as many again lent past them while needed: one for
# each thread that may hold one at once (server/node.py IO_THREADS, the DSN pipeline's PARALLEL,
# the mandate extractions' EXTRACT_WORKERS, the change feed's listener) with room to spare. A
# PostgreSQL server serving N nodes needs max_connections above N x 2 x POOL_SIZE.
POOL_SIZE = 12


def open_engine(url: str) -> Engine:
    """Creates the engine for a database URL (sqlite:///FILE or postgresql+psycopg://...).

    Statement parameters never appear in exceptions or logs: they hold names of natural
    persons (sole traders in the RCD) and, later, other personal data.
    """
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=POOL_SIZE,
            max_overflow=POOL_SIZE,
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_SIZE, hide_parameters=True)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def reading(engine: Engine) -> Connection:
    """A connection for reads only (`with reading(engine) as connection:`). On PostgreSQL it is
    in autocommit: each statement runs on its own snapshot, as it does inside a READ COMMITTED
    transaction anyway, but the reads cost no BEGIN and no ROLLBACK, and psycopg keeps its
    prepared statements (it drops them all, DEALLOCATE ALL, at every ROLLBACK: a read through
    `engine.connect()` made the next statements parsed and planned again). A write through it
    would commit at once: write through `engine.begin()`. Not for a server-side cursor
    (`yield_per`), which needs a transaction. SQLite's reads take no transaction already."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection


@contextmanager
def writing(engine: Engine, within: Connection | None = None) -> Iterator[Connection]:
    """A transaction (`engine.begin()`), or `within`, a caller's transaction the writes join
    (committed or rolled back with the rest of the caller's)."""
    if within is not None:
        yield within
        return
    with engine.begin() as connection:
        yield connection


# A pooled connection idle for longer than this is pinged before it is handed out (a database
# restarted meanwhile: the pool then opens a fresh one). A busy node's connections are not:
# `pool_pre_ping` cost one round trip per checkout, dozens per deposit. One that breaks in use
# fails that transaction, and SQLAlchemy then drops every connection opened before it.
PING_AFTER_IDLE_SECONDS = 10.0


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as error:  # the pool retries with a fresh connection
        raise exc.DisconnectionError("idle connection lost") from error


def alembic_config(engine: Engine) -> Config:
    """Alembic configuration bound to an engine, without an alembic.ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrates the schema to the given revision (the newest by default)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
