"""Followed streams and background workers woken by database changes (registry/kernel/
change_feed.py), not by their poll interval: set to 60 s here, every bound below is 15 s.

On PostgreSQL two nodes share one database: a deposit submitted on one is routed by the other's
pipeline (the first's is stopped) and followed there to ROUTED, and an organism following its
deliveries there receives its share; the listening connection killed, followers are woken and
the node listens again; notifications carry no personal data; a burst of notifications wakes a
follower a few times, not once each. On SQLite (one node) the node's own commits wake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from interops.dsn.v1 import dsn_pb2
from psycopg import sql
from sqlalchemy import insert, make_url, select, update

from clients.client import Client
from clients.token_credentials import ChainCredentials, OrganismCredentials
from registry.dsn.schema import deliveries, deposits
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.kernel.change_feed import (
    CHANNELS,
    DELIVERY,
    DEPOSIT,
    DSN_WORK,
    OPERATION,
    REGISTRY,
    RETURN,
    ChangeFeed,
)
from registry.kernel.database import open_engine, upgrade
from registry.operation.schema import operations
from registry.rcd.schema import registry_feed
from registry.trust.declarant_store import DeclarantStore
from tests.databases import PG_URL, fresh_database
from tests.running_node import RunningNode

POLL = 60.0  # the fallback poll interval of every node here
PROMPT = 15.0  # what "at once" means on a loaded machine: far below POLL
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
DEPOSIT_SERVICE = "interops.dsn.v1.DepositService"
DELIVERY_SERVICE = "interops.dsn.v1.DeliveryService"
NAMES = ("Martin", "Camille")  # the declarant's
needs_postgresql = pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")


def _dsn(directory: Path, number: int) -> tuple[Path, set[str]]:
    """A DSN file, and the NIRs and names of its employees."""
    path = directory / f"dsn-{number}.txt"
    path.write_bytes(b"".join(generate(3, order=700 + number, seed=number)))
    personal = set(re.findall(r"^S21\.G00\.30\.00[124],'([^']+)'", path.read_text(), re.M))
    return path, personal


def _routed_within(node: RunningNode, chain: ChainCredentials, deposit_id: str) -> float:
    """Follows the deposit on `node` (WatchDeposit) until ROUTED; the seconds it took."""
    start = time.monotonic()
    with Client(node.address, credentials=chain, timeout=POLL + 30) as declarant:
        for deposit in declarant.watch_deposit(deposit_id):
            if deposit.state == dsn_pb2.DEPOSIT_STATE_ROUTED:
                return time.monotonic() - start
            assert deposit.state != dsn_pb2.DEPOSIT_STATE_REJECTED, deposit.rejection_message
    raise AssertionError(f"{deposit_id} ended without being routed")


def _first_delivery(node: RunningNode, credentials: OrganismCredentials) -> dsn_pb2.Delivery:
    """The first delivery a StreamDeliveries on `node` hands over."""
    with (
        Client(node.address, credentials=credentials, timeout=POLL + 30) as system,
        contextlib.closing(iter(system.stream_deliveries(lease_seconds=60))) as stream,
    ):
        return next(stream)


def _warm_up(
    node: RunningNode, chain: ChainCredentials, organism: OrganismCredentials, directory: Path
) -> None:
    """One deposit routed and its shares leased away, before anything is timed: the first
    reading starts the process's reading pool, which takes seconds on a loaded machine."""
    with Client(node.address, credentials=chain, timeout=60) as declarant:
        deposit_id = str(declarant.submit_deposit(_dsn(directory, 0)[0]).id)
    _routed_within(node, chain, deposit_id)
    with Client(organism.address, credentials=organism, timeout=60) as system:
        assert system.fetch_deliveries(max_deliveries=100, lease_seconds=3600)


class Pair:
    """Two nodes on one PostgreSQL database; the first's pipeline stopped, so that only the
    second's, woken by a notification, moves deposits on."""

    def __init__(self, url: str, shared: Path) -> None:
        self.url = url
        self.first = RunningNode(url, shared, feed_poll_seconds=POLL)
        self.keys = self.first.encryption_keys()
        DeclarantStore(self.first.node.engine).create(
            FIRM, *NAMES, "change feed pw", [("dsn.deposit", DEMO_COMPANY.siren)]
        )
        urssaf = self.first.organism("URSSAF", "URSSAF", rights=("dsn.deliveries",))
        # Started once the directory holds every key: its own is read every POLL only.
        self.second = RunningNode(url, shared, feed_poll_seconds=POLL)
        self.first.run(self.first.node.pipeline.stop())
        self.chain = self.first.sign_in(FIRM, *NAMES, "change feed pw",
                                        audience=[DEPOSIT_SERVICE])  # fmt: skip
        self.urssaf = OrganismCredentials(self.second.address, urssaf, [DELIVERY_SERVICE])
        _warm_up(self.first, self.chain, self.urssaf, shared)

    def submit(self, path: Path) -> str:
        """Deposits a file on the first node."""
        with Client(self.first.address, credentials=self.chain, timeout=60) as declarant:
            return str(declarant.submit_deposit(path).id)

    def conninfo(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not PG_URL:
        pytest.skip("INTEROPS_TEST_DATABASE_URL is not set")
    directory = tmp_path_factory.mktemp("pair")
    with fresh_database("postgresql", directory) as url:
        pair = Pair(url, directory / "volume")
        try:
            yield pair
        finally:
            pair.second.stop()
            pair.first.stop()


@needs_postgresql
def test_a_deposit_on_one_node_is_routed_and_followed_on_the_other_at_once(
    pair: Pair, tmp_path: Path
) -> None:
    with psycopg.connect(pair.conninfo(), autocommit=True) as listener:
        for channel in CHANNELS:
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        with ThreadPoolExecutor(1) as organism:
            # URSSAF follows its deliveries on the second node before anything is deposited.
            delivered = organism.submit(_first_delivery, pair.second, pair.urssaf)
            time.sleep(0.5)
            path, personal = _dsn(tmp_path, 1)
            started = time.monotonic()
            deposit_id = pair.submit(path)
            routed = _routed_within(pair.second, pair.chain, deposit_id)
            share = delivered.result(timeout=PROMPT)
            shared = time.monotonic() - started
        notices = list(listener.notifies(timeout=1.0))
    assert routed < PROMPT and shared < PROMPT, (routed, shared)
    assert share.deposit_id == deposit_id
    with pair.first.node.engine.connect() as connection:
        holder, declarant = connection.execute(
            select(deposits.c.claimed_by, deposits.c.declarant)
            .where(deposits.c.id == deposit_id)
        ).one()  # fmt: skip
        organisms = set(connection.execute(
            select(deliveries.c.organism).where(deliveries.c.deposit_id == deposit_id)
        ).scalars())  # fmt: skip
    assert holder == pair.second.node.instance  # the second's pipeline, woken from the first
    # What the notifications said: keys that name no person, nothing from the file.
    seen = {(notice.channel, notice.payload) for notice in notices}
    expected = {DEPOSIT: {deposit_id}, DSN_WORK: {""}, DELIVERY: organisms, RETURN: {declarant}}
    assert {channel for channel, _ in seen} >= {DEPOSIT, DSN_WORK, DELIVERY}
    for channel, payload in seen:
        assert payload in expected.get(channel, {payload}), (channel, payload)
        assert len(payload) <= 64
        assert not any(value.lower() in payload.lower() for value in (*personal, *NAMES))
    assert personal and len(personal) >= 3  # the check above looked for something


@needs_postgresql
def test_a_killed_listening_connection_wakes_followers_and_comes_back(
    pair: Pair, tmp_path: Path
) -> None:
    feed = pair.second.node.changes
    before = feed.backend_pid
    assert before
    watching = threading.Event()

    async def follow() -> float:
        with feed.watch(OPERATION, "nothing-ever-changes-this") as changed:
            watching.set()
            start = time.monotonic()
            await changed.wait(POLL)
            return time.monotonic() - start

    waited = asyncio.run_coroutine_threadsafe(follow(), pair.second.loop)
    assert watching.wait(PROMPT)
    with psycopg.connect(pair.conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (before,))
    assert waited.result(timeout=PROMPT) < PROMPT  # woken by the loss, not by the poll
    deadline = time.monotonic() + PROMPT
    while feed.backend_pid in (0, before):
        assert time.monotonic() < deadline, "the node did not listen again"
        time.sleep(0.05)
    # Later changes still wake the second node's pipeline and followers.
    deposit_id = pair.submit(_dsn(tmp_path, 2)[0])
    assert _routed_within(pair.second, pair.chain, deposit_id) < PROMPT


@needs_postgresql
def test_a_burst_of_notifications_wakes_a_follower_a_few_times_not_once_each(
    tmp_path: Path,
) -> None:
    burst = 10_000
    with fresh_database("postgresql", tmp_path) as url:
        engine = open_engine(url)

        def notify() -> None:
            with psycopg.connect(make_url(url).set(drivername="postgresql")
                                 .render_as_string(False)) as connection:  # fmt: skip
                connection.execute(
                    "SELECT pg_notify(%s, n::text) FROM generate_series(1, %s) AS n",
                    (REGISTRY, burst),
                )

        async def follow() -> tuple[int, int]:
            feed = ChangeFeed(engine)
            await feed.start()
            reads = 0

            async def follower() -> None:
                nonlocal reads
                with feed.watch(REGISTRY) as changed:
                    while True:
                        await changed.wait(POLL)
                        reads += 1
                        await asyncio.sleep(0.02)  # reading again takes a while

            task = asyncio.create_task(follower())
            await asyncio.sleep(0.1)
            await asyncio.to_thread(notify)
            for _ in range(1200):  # a minute at most
                if feed.received >= burst:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            task.cancel()
            await feed.stop()
            return feed.received, reads

        try:
            received, reads = asyncio.run(follow())
        finally:
            engine.dispose()
    assert received == burst
    assert 1 <= reads < burst // 20, reads  # not a read per notification


def test_on_sqlite_committed_writes_wake_followers_and_rolled_back_ones_do_not(
    tmp_path: Path,
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'feed.db'}")
    upgrade(engine)

    async def follow() -> tuple[bool, bool]:
        feed = ChangeFeed(engine)
        await feed.start()
        with feed.watch(OPERATION) as operation, feed.watch(REGISTRY) as registry:
            with engine.connect() as connection:  # an operation written, then rolled back
                connection.execute(insert(operations).values(
                    id="op1", kind="test", state=1, done_units=0, total_units=0, unit="",
                    created_at=datetime.now(UTC), updated_at=datetime.now(UTC),
                ))  # fmt: skip
                connection.rollback()

            def commit() -> None:
                with engine.begin() as connection:
                    connection.execute(update(registry_feed).values(last_position=1))

            await asyncio.to_thread(commit)
            start = time.monotonic()
            await registry.wait(POLL)
            woken = time.monotonic() - start < PROMPT
            rolled_back_woke = operation.flag.is_set()
        await feed.stop()
        return woken, rolled_back_woke

    try:
        woken, rolled_back_woke = asyncio.run(follow())
    finally:
        engine.dispose()
    assert woken
    assert not rolled_back_woke


def test_on_one_sqlite_node_a_deposit_is_followed_to_its_end_and_its_share_streamed_at_once(
    tmp_path: Path,
) -> None:
    node = RunningNode(f"sqlite:///{tmp_path / 'node.db'}", tmp_path / "data",
                       feed_poll_seconds=POLL)  # fmt: skip
    try:
        node.encryption_keys()
        DeclarantStore(node.node.engine).create(
            FIRM, *NAMES, "change feed pw", [("dsn.deposit", DEMO_COMPANY.siren)]
        )
        urssaf = node.organism("URSSAF", "URSSAF", rights=("dsn.deliveries",))
        chain = node.sign_in(FIRM, *NAMES, "change feed pw", audience=[DEPOSIT_SERVICE])
        credentials = OrganismCredentials(node.address, urssaf, [DELIVERY_SERVICE])
        _warm_up(node, chain, credentials, tmp_path)
        with ThreadPoolExecutor(1) as organism:
            delivered = organism.submit(_first_delivery, node, credentials)
            time.sleep(0.5)
            started = time.monotonic()
            with Client(node.address, credentials=chain, timeout=60) as declarant:
                deposit_id = str(declarant.submit_deposit(_dsn(tmp_path, 3)[0]).id)
            routed = _routed_within(node, chain, deposit_id)
            share = delivered.result(timeout=PROMPT)
            shared = time.monotonic() - started
        assert routed < PROMPT and shared < PROMPT, (routed, shared)
        assert share.deposit_id == deposit_id
    finally:
        node.stop()
