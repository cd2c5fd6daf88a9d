"""Three `interops serve` processes on one PostgreSQL, each with a data directory of its own
(the same keys, nothing else shared on disk), clients spread over them, and one node killed
with SIGKILL in the middle of the run: every deposit is routed once, every share delivered and
acknowledged once in effect, every notification delivered, the audit journals of all three
nodes verify, and a deposit submitted on one node is followed and downloaded on another."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from interops.dsn.v1 import dsn_pb2
from interops.notify.v1 import notify_pb2
from sqlalchemy import Engine, func, select

from clients.client import Client
from clients.errors import InteropsError
from clients.token_credentials import OrganismCredentials
from registry.dsn.schema import deliveries, deposits
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.kernel.database import open_engine, upgrade
from registry.notify.schema import notify_deliveries
from registry.notify.store import NotifyStore
from registry.rcd.sirene_synth import siren_at
from registry.trust.declarant_store import DeclarantStore
from tests.databases import PG_URL, fresh_database
from tests.mailbox import Mailbox, smtp_server
from tests.running_node import (
    declarant_chain,
    provision_organism,
    provision_routing_encryption_keys,
)
from token_suite.chain import Signer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set"),
]

FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
DEPOSIT = "interops.dsn.v1.DepositService"
DELIVERY = "interops.dsn.v1.DeliveryService"
NOTIFY = "interops.notify.v1.NotificationService"
# Every organism a monthly declaration of the generator concerns (as bench/dsn_routing).
ORGANISMS = {"URSSAF": "URSSAF", "DGFIP": "DGFIP", "AGIRC-ARRCO": "AGIRC_ARRCO",
             "PREVOYANCE": "OC", "FRANCE-TRAVAIL": "FRANCE_TRAVAIL", "CNAM": "CNAM"}  # fmt: skip
DEPOSITS = 36
KILLED_AFTER = 12  # deposits submitted before the third node is killed
COMPANIES = 40  # notified by e-mail, half before the kill, half after
# How long a dead node's claims hold its work: short here, so the test does not wait minutes.
CLAIM_SECONDS = 3

T = TypeVar("T")
# What a call to a node that died answers.
GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)  # fmt: skip


class NodeProcess:
    """`interops serve` in a process of its own, on a free loopback port."""

    def __init__(self, name: str, url: str, data_dir: Path, smtp_port: int) -> None:
        self.name = name
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{name}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("INTEROPS_")}
        env |= {
            "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
            "INTEROPS_HTTP_ADDRESS": "off",
            "INTEROPS_DATABASE_URL": url,
            "INTEROPS_DATA_DIR": str(data_dir),
            "INTEROPS_FEED_POLL_SECONDS": "0.2",
            "INTEROPS_CLAIM_SECONDS": str(CLAIM_SECONDS),
            "INTEROPS_SMTP_PORT": str(smtp_port),
            "INTEROPS_NOTIFY_BACKOFF_SECONDS": "0.2",
            "INTEROPS_LINK_IDLE_MONTHS": "1200",
            "INTEROPS_LOG_LEVEL": "WARNING",
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clients.cli", "serve"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.address = ""
        deadline = time.monotonic() + 60
        while not self.address:
            found = re.search(r"serving on (\S+)", self.log.read_text())
            self.address = found.group(1) if found else ""
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"{name} did not start: {self.log.read_text()}"
            time.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[NodeProcess], Mailbox]]:
    """The database, three nodes (the second and third given the first's keys) and the SMTP
    server they all send through."""
    with fresh_database("postgresql", tmp_path) as url, smtp_server() as (box, smtp_port):
        engine = open_engine(url)
        upgrade(engine)
        engine.dispose()
        nodes: list[NodeProcess] = []
        try:
            nodes.append(NodeProcess("a", url, tmp_path / "a", smtp_port))
            for name in ("b", "c"):  # every node holds the same root, issuer and data keys
                shutil.copytree(tmp_path / "a" / "keys", tmp_path / name / "keys")
                nodes.append(NodeProcess(name, url, tmp_path / name, smtp_port))
            yield url, nodes, box
        finally:
            for node in nodes:
                node.stop()


def _on_live_node(nodes: list[NodeProcess], start: int, call: Callable[[str], T]) -> T:
    """`call(address)` on the first live node from `start` on that answers: a client of a dead
    node tries the next one (what a round-robin or a reverse proxy does for it)."""
    for offset in range(len(nodes) * 3):
        node = nodes[(start + offset) % len(nodes)]
        if not node.alive:
            continue
        try:
            return call(node.address)
        except InteropsError as error:
            if error.code not in GONE:
                raise
        time.sleep(0.1)
    raise AssertionError("no node answered")


def _unfinished_claims(engine: Engine, node: NodeProcess) -> int:
    """How many deposits the node holds (claimed, lease running) and has not finished."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(deposits)
                .where(
                    deposits.c.claimed_by.like(f"%:{node.process.pid}:%"),
                    deposits.c.claimed_until > int(time.time() * 1000),
                    deposits.c.state.in_(("RECEIVED", "VALIDATED")),
                )
            ).scalar_one()
        )


def _organism_loop(
    nodes: list[NodeProcess], index: int, signer: Signer, key: bytes, expected: set[str],
    received: dict[str, bytes], stop: threading.Event, failures: list[BaseException],
) -> None:  # fmt: skip
    """An organism's system: leases its deliveries on some node, downloads, acknowledges;
    moves to another node when its node dies."""

    # Downloaded, not known to be acknowledged: a node may die after recording a receipt and
    # before answering, so the receipt is sent again to the next node (a second one is a no-op).
    unconfirmed: dict[str, tuple[dsn_pb2.Delivery, bytes]] = {}

    def one_round(address: str) -> int:
        credentials = OrganismCredentials(address, signer, (DELIVERY,))
        with Client(address, credentials=credentials, timeout=20) as system:
            for delivery, share in list(unconfirmed.values()):
                system.acknowledge_delivery(delivery, signer)
                received[delivery.deposit_id] = share
                del unconfirmed[delivery.id]
            batch = system.fetch_deliveries(max_deliveries=20, lease_seconds=CLAIM_SECONDS)
            for delivery in batch:
                unconfirmed[delivery.id] = (delivery, system.download_share(delivery.id, key))
                system.acknowledge_delivery(delivery, signer)
                received[delivery.deposit_id] = unconfirmed.pop(delivery.id)[1]
            return len(batch)

    try:
        while not stop.is_set() and not (expected and expected <= set(received)):
            if not _on_live_node(nodes, index, one_round):
                time.sleep(0.1)
            index += 1  # spread over the nodes
    except BaseException as error:  # the test reports it
        failures.append(error)


def test_three_nodes_one_killed_lose_and_repeat_nothing(
    cluster: tuple[str, list[NodeProcess], Mailbox], tmp_path: Path
) -> None:
    url, nodes, box = cluster
    engine = open_engine(url)
    try:
        DeclarantStore(engine).create(FIRM, "Trois", "Noeuds", "three nodes pw",
                                      [("dsn.deposit", DEMO_COMPANY.siren)])  # fmt: skip
        signers = {code: provision_organism(engine, code, kind, ("dsn.deliveries",))
                   for code, kind in ORGANISMS.items()}  # fmt: skip
        sealing = provision_routing_encryption_keys(engine)
        sender = provision_organism(engine, "CARSAT", "OC", ("notify.send",))
        notify = NotifyStore(engine)
        companies = [siren_at(500 + number) for number in range(COMPANIES)]
        for siren in companies:
            notify.subscribe(siren, "AT_MP_RATE", ["EMAIL"], f"paie@{siren}.example")
        notify.publish_template("atmp-rate", "AT_MP_RATE", "Taux AT/MP {year}",
                                "Le taux de {siren} pour {year} est de {rate} %.")  # fmt: skip
        chain = declarant_chain(nodes[0].address, FIRM, "Trois", "Noeuds", "three nodes pw",
                                audience=[DEPOSIT])  # fmt: skip

        files = []
        for number in range(DEPOSITS):
            path = tmp_path / f"dsn-{number}.txt"
            path.write_bytes(b"".join(generate(3, order=700 + number, seed=number)))
            files.append(path)
        received: dict[str, dict[str, bytes]] = {code: {} for code in ORGANISMS}
        expected: set[str] = set()
        stop = threading.Event()
        failures: list[BaseException] = []
        organisms = [
            threading.Thread(target=_organism_loop, daemon=True,
                             args=(nodes, number, signers[code], sealing[code], expected,
                                   received[code], stop, failures))
            for number, code in enumerate(ORGANISMS)
        ]  # fmt: skip

        def submit(number: int, start: int | None = None) -> str:
            def call(address: str) -> str:
                with Client(address, credentials=chain, timeout=20) as declarant:
                    # The same request id wherever it is sent again: one deposit.
                    return declarant.submit_deposit(files[number], request_id=f"d-{number}").id

            return _on_live_node(nodes, number if start is None else start, call)

        def send(request_id: str, sirens: list[str]) -> None:
            def call(address: str) -> None:
                credentials = OrganismCredentials(address, sender, (NOTIFY,))
                with Client(address, credentials=credentials, timeout=20) as client:
                    client.notify.Send(notify_pb2.SendRequest(
                        request_id=request_id, template="atmp-rate", sirens=sirens,
                        values={"year": "2027", "rate": "1.10"}))  # fmt: skip

            _on_live_node(nodes, 2, call)  # the third node first: it is the one killed

        submitted = [submit(number) for number in range(KILLED_AFTER)]
        send("before-the-kill", companies[: COMPANIES // 2])
        for thread in organisms:
            thread.start()
        third, number = nodes[2], KILLED_AFTER
        # Deposits on the third node until it holds one it has not finished (under way there,
        # shares leased, mail being sent), then it is killed.
        while True:
            submitted.append(submit(number, start=2))
            number += 1
            if (held := _unfinished_claims(engine, third)) or number == DEPOSITS:
                break
        third.kill()
        assert held, "the third node never held unfinished work: the kill proves nothing"
        send("after-the-kill", companies[COMPANIES // 2 :])
        submitted += [submit(number) for number in range(number, DEPOSITS)]
        # Sent again after the kill, on the nodes still alive: nothing new.
        assert [submit(number) for number in range(KILLED_AFTER)] == submitted[:KILLED_AFTER]
        expected.update(submitted)

        # A deposit submitted on one node is followed to its end on another.
        with Client(nodes[1].address, credentials=chain, timeout=20) as declarant:
            deadline = time.monotonic() + 120
            for deposit_id in submitted:
                while declarant.get_deposit(deposit_id).state != dsn_pb2.DEPOSIT_STATE_ROUTED:
                    assert time.monotonic() < deadline, f"{deposit_id} was not routed"
                    time.sleep(0.1)
        for thread in organisms:
            thread.join(timeout=120)
        stop.set()
        assert not failures, failures
        for code in ORGANISMS:  # every organism downloaded its share of every deposit
            assert set(received[code]) == set(submitted), code
            assert all(share.startswith(b"S10.G00.00.001") for share in received[code].values())

        with engine.connect() as connection:
            assert connection.execute(
                select(func.count()).select_from(deposits)
            ).scalar() == DEPOSITS  # fmt: skip
            states = connection.execute(
                select(deliveries.c.deposit_id, deliveries.c.organism, deliveries.c.state)
            ).all()
        # Routed once: one delivery per deposit and organism, each acknowledged.
        assert len(states) == DEPOSITS * len(ORGANISMS)
        assert len({(deposit, organism) for deposit, organism, _ in states}) == len(states)
        assert {state for _, _, state in states} == {"ACKNOWLEDGED"}

        # Every notification delivered: each company's address received its mail.
        deadline = time.monotonic() + 120
        while True:
            with engine.connect() as connection:
                pending = connection.execute(
                    select(func.count()).select_from(notify_deliveries)
                    .where(notify_deliveries.c.state != "DELIVERED")
                ).scalar()  # fmt: skip
            if not pending:
                break
            assert time.monotonic() < deadline, f"{pending} notifications not delivered"
            time.sleep(0.2)
        assert {m["To"] for m in box.messages} == {f"paie@{s}.example" for s in companies}
    finally:
        engine.dispose()
    for node in nodes:
        node.stop()
    # The audit journals of all three nodes verify, the killed one's included.
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTEROPS_")}
    env |= {"INTEROPS_DATABASE_URL": url, "INTEROPS_DATA_DIR": str(nodes[0].data_dir)}
    verified = subprocess.run([sys.executable, "-m", "clients.cli", "audit", "verify"],
                              env=env, capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count(": ok") >= 3, verified.stdout
