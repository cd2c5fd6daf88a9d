"""Fixtures: databases of each backend (and a migrated engine on one), a running node on each,
a client to it, demo stock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from clients.client import Client
from registry.kernel.database import open_engine, upgrade
from registry.rcd.sirene_synth import StockFiles, write_stock
from tests.databases import BACKENDS, PG_URL, fresh_database
from tests.running_node import RunningNode


def _backend_params() -> list[object]:
    return [
        pytest.param(
            backend,
            marks=pytest.mark.skipif(
                backend == "postgresql" and not PG_URL,
                reason="INTEROPS_TEST_DATABASE_URL is not set",
            ),
        )
        for backend in BACKENDS
    ]


@pytest.fixture(params=_backend_params(), scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """Each storage backend in turn: SQLite always, PostgreSQL when configured."""
    return str(request.param)


@pytest.fixture(scope="module")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database shared by one test module."""
    with fresh_database(backend, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the module's database, migrated."""
    engine = open_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def stock(tmp_path_factory: pytest.TempPathFactory) -> StockFiles:
    """Synthetic stock files of 600 establishments."""
    return write_stock(tmp_path_factory.mktemp("stock"), 600, seed=7)


@pytest.fixture(scope="module")
def node(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node on a fresh database of the module's backend."""
    running = RunningNode(database_url, tmp_path_factory.mktemp("data"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(node: RunningNode) -> Iterator[Client]:
    """A synchronous client to the module's node."""
    with Client(node.address, credentials=node.credentials(), timeout=30) as connected:
        yield connected


@pytest.fixture(scope="module")
def loaded(client: Client, stock: StockFiles) -> StockFiles:
    """The module's node with the synthetic stock imported through the gRPC upload."""
    for path in (stock.companies, stock.establishments):
        started = client.import_stock(path)
        final = list(client.watch_operation(started.name))[-1]
        assert final.done and final.error.message == ""
    return stock
