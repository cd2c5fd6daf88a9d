"""Test databases: a fresh SQLite file always, a fresh PostgreSQL database when
INTEROPS_TEST_DATABASE_URL names a server (any database on it; ours are created and dropped)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

PG_URL = os.environ.get("INTEROPS_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """Yields the URL of an empty database of that backend, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
        return
    server = make_url(PG_URL)
    name = f"interops_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
