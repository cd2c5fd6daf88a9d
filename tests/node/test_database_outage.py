"""The database restarting under a busy node: its pooled connections are not pinged before every
use any more (only after being idle), so the first call to meet a dead one fails, as
UNAVAILABLE with DATABASE_UNAVAILABLE (send it again), never INTERNAL, and the calls after it
get fresh connections; while the database refuses connections, every call is UNAVAILABLE."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from clients.client import Client
from clients.errors import InteropsError
from registry.rcd.sirene_synth import siren_at
from tests.databases import PG_URL, fresh_database
from tests.running_node import RunningNode

needs_postgresql = pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        make_url(url).set(drivername="postgresql", database="postgres").render_as_string(False),
        autocommit=True,
    )


def _allow_connections(url: str, allowed: bool) -> None:
    """As the database going down (or coming back), for this test's database alone."""
    name = make_url(url).database
    with _admin(url) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')


def _terminate_pool(url: str) -> int:
    """Ends every session of the node's database but the change feed's (as a restart does)."""
    with _admin(url) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name <> 'interops-change-feed'",
            (make_url(url).database,),
        ).fetchone()
    return int(str(ended[0])) if ended else 0


def _outcome(client: Client) -> str:
    try:
        client.get_company(siren_at(1))
    except InteropsError as error:
        return f"{error.code.name}:{error.reason}"
    return "OK"


@needs_postgresql
def test_a_database_restart_costs_one_call_that_may_be_sent_again(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        # Background loops idle (they would otherwise meet the dead connections first, and
        # the pool be renewed before the call comes).
        node = RunningNode(url, tmp_path / "data", feed_poll_seconds=30.0)
        try:
            with Client(node.address, credentials=node.credentials(), timeout=30) as client:
                for _ in range(5):  # the pool holds a few connections, all used just now
                    assert _outcome(client) == "NOT_FOUND:COMPANY_NOT_FOUND"
                assert _terminate_pool(url) >= 1
                time.sleep(0.2)
                outcomes = [_outcome(client) for _ in range(4)]
                # Down: no connection to be had (refused while connecting), then back.
                _allow_connections(url, False)
                _terminate_pool(url)
                while_down = [_outcome(client) for _ in range(3)]
                _allow_connections(url, True)
                after = _outcome(client)
        finally:
            _allow_connections(url, True)
            node.stop()
    # The first call may meet a cut connection (unless the node's background work met it
    # first); never INTERNAL, and the pool is renewed after it.
    assert outcomes[0] in ("UNAVAILABLE:DATABASE_UNAVAILABLE", "NOT_FOUND:COMPANY_NOT_FOUND")
    assert outcomes[1:] == ["NOT_FOUND:COMPANY_NOT_FOUND"] * 3, outcomes
    assert while_down == ["UNAVAILABLE:DATABASE_UNAVAILABLE"] * 3, while_down
    assert after == "NOT_FOUND:COMPANY_NOT_FOUND"
