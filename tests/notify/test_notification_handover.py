"""The API channel hands each notification over at least once, whatever the caller or the node
does: deadlines that pass while it answers, streams hung up, the node killed (-9) while it
hands over. Every notification sent is acknowledged in the end, and none is handed over again
after its acknowledgement (duplicates only before it)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from interops.notify.v1 import notify_pb2 as pb
from sqlalchemy import func, select

from clients.client import Client
from clients.errors import InteropsError
from clients.paging import pages
from clients.token_credentials import OrganismCredentials
from registry.kernel.database import open_engine, upgrade
from registry.notify.schema import notifications
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.declarant_store import DeclarantStore
from tests.running_node import declarant_chain, provision_organism
from token_suite.chain import Signer

pytestmark = pytest.mark.slow

NOTIFY = "interops.notify.v1.NotificationService"
COMPANY = siren_at(21)
LEASE = 1  # seconds: what is not acknowledged comes back quickly


@dataclass
class Node:
    """`interops serve` in a process of its own, restartable on the same database."""

    database_url: str
    data_dir: Path
    sender: Signer
    process: subprocess.Popen[str] | None = None
    address: str = ""

    def start(self) -> None:
        env = {
            **os.environ,
            "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
            "INTEROPS_HTTP_ADDRESS": "off",
            "INTEROPS_DATA_DIR": str(self.data_dir),
            "INTEROPS_DATABASE_URL": self.database_url,
            "INTEROPS_TRACING_EXPORTER": "none",
            "INTEROPS_FEED_POLL_SECONDS": "0.05",
            "INTEROPS_SHUTDOWN_GRACE_SECONDS": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "serve"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if found := re.search(r"serving on (\S+)", line):
                self.address = found.group(1)
                return
        raise AssertionError("the node did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Receiver:
    """What the company's system saw: every hand-over, and what it acknowledged."""

    seen: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    handed_after_ack: list[str] = field(default_factory=list)

    def saw(self, notification: pb.Notification) -> None:
        self.seen.add(notification.id)
        if notification.id in self.acknowledged:
            self.handed_after_ack.append(notification.id)


@pytest.fixture(scope="module")
def node(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    engine = open_engine(database_url)
    upgrade(engine)
    sender = provision_organism(engine, "SENDER", "OC", rights=("notify.send",))
    DeclarantStore(engine).create(
        siret_of(COMPANY, 1), "Moreau", "Alex", "pw", [("notify.read", COMPANY)]
    )
    engine.dispose()
    running = Node(database_url, tmp_path_factory.mktemp("handover"), sender)
    running.start()
    yield running
    running.stop()


def _company(node: Node) -> Client:
    chain = declarant_chain(node.address, siret_of(COMPANY, 1), "Moreau", "Alex", "pw",
                            audience=[NOTIFY])  # fmt: skip
    return Client(node.address, credentials=chain, timeout=30)


def _sender(node: Node) -> Client:
    credentials = OrganismCredentials(node.address, node.sender, [NOTIFY])
    return Client(node.address, credentials=credentials)


def _held(node: Node) -> int:
    """Notifications held on the API channel, not yet acknowledged."""
    engine = open_engine(node.database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).where(notifications.c.fetched == 1)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _send(node: Node, count: int, label: str) -> set[str]:
    """`count` notifications to the company on the API channel, once they are held there."""
    with _company(node) as company:
        company.notify.Subscribe(pb.SubscribeRequest(subscription=pb.Subscription(
            siren=COMPANY, topic=pb.TOPIC_AT_MP_RATE, channels=[pb.CHANNEL_API])))  # fmt: skip
    with _sender(node) as sender:
        with contextlib.suppress(InteropsError):  # published by an earlier test
            sender.notify.PublishTemplate(pb.PublishTemplateRequest(template=pb.Template(
                name="handover", topic=pb.TOPIC_AT_MP_RATE, subject="Taux {n}",
                body="Notification {n}.")))  # fmt: skip
        for number in range(count):
            sender.notify.Send(pb.SendRequest(
                request_id=f"{label}-{number}", template="handover", sirens=[COMPANY],
                values={"n": str(number)}))  # fmt: skip
    sent = {n.id for n in _stored(node) if n.template == "handover"} - _SEEN
    _SEEN.update(sent)
    assert len(sent) == count
    deadline = time.monotonic() + 60
    while _held(node) < count:
        assert time.monotonic() < deadline, "the dispatcher did not hold them on the API channel"
        time.sleep(0.1)
    return sent


_SEEN: set[str] = set()  # sent by an earlier test of the module


def _stored(node: Node) -> list[pb.Notification]:
    """The company's notifications, as the company lists them."""
    with _company(node) as company:
        request = pb.ListNotificationsRequest(siren=COMPANY, page_size=100)
        return list(pages(company.notify.ListNotifications, request, "notifications"))


def _receive_all(node: Node, receiver: Receiver, expected: set[str]) -> None:
    """A careful system: fetches, keeps, then acknowledges, until nothing is held for it; then
    every notification sent is received (acknowledged by the company on the API channel)."""
    deadline = time.monotonic() + 90
    with _company(node) as company:
        while _held(node):
            assert time.monotonic() < deadline, f"{_held(node)} never handed over again"
            handed = company.notify.FetchNotifications(
                pb.FetchNotificationsRequest(max_notifications=100, lease_seconds=LEASE)
            ).notifications
            for notification in handed:
                receiver.saw(notification)
            company.acknowledge_notifications([n.id for n in handed])
            receiver.acknowledged |= {n.id for n in handed}
            if not handed:
                time.sleep(0.1)
    received = {
        n.id
        for n in _stored(node)
        if (pb.ACK_KIND_RECEIVED, pb.CHANNEL_API)
        in {(a.kind, a.channel) for a in n.acknowledgements}
    }
    lost = expected - receiver.seen
    assert not lost, f"{len(lost)} of {len(expected)} never reached the company"
    assert expected <= received, f"{len(expected - received)} of {len(expected)} unacknowledged"
    assert not receiver.handed_after_ack, "handed over again after its acknowledgement"


def test_deadlines_that_pass_while_the_node_answers_lose_nothing(node: Node) -> None:
    sent = _send(node, 300, "deadline")
    receiver = Receiver()
    with _company(node) as company:
        for number in range(10):  # 1 to 30 ms: each answer, if any, comes too late
            with contextlib.suppress(InteropsError, grpc.RpcError):
                company.notify._stub.FetchNotifications(
                    pb.FetchNotificationsRequest(max_notifications=100, lease_seconds=LEASE),
                    timeout=0.001 + number * 0.003,
                )
    _receive_all(node, receiver, sent)


def test_streams_hung_up_lose_nothing(node: Node) -> None:
    sent = _send(node, 300, "hang-up")
    receiver = Receiver()
    with _company(node) as company:
        for number in range(20):
            stream = company.stream_notifications(timeout=30, lease_seconds=LEASE)
            for _ in range(1 + number % 5):  # take a few, acknowledge none, hang up
                receiver.saw(next(stream))
            stream.close()
        # A stream that acknowledges what it keeps, hung up halfway.
        stream = company.stream_notifications(timeout=30, lease_seconds=LEASE)
        for _ in range(100):
            kept = next(stream)
            receiver.saw(kept)
            company.acknowledge_notifications([kept.id])
            receiver.acknowledged.add(kept.id)
        stream.close()
    _receive_all(node, receiver, sent)


def test_the_node_killed_while_it_hands_over_loses_nothing(node: Node) -> None:
    sent = _send(node, 300, "kill")
    receiver = Receiver()
    rounds = random.Random(7)
    for _ in range(3):
        stop = threading.Event()

        def busy(streaming: bool, stop: threading.Event = stop) -> None:
            """Callers fetching and streaming when the node dies, acknowledging some."""
            with contextlib.suppress(InteropsError, grpc.RpcError), _company(node) as company:
                while not stop.is_set():
                    if streaming:
                        stream = company.stream_notifications(lease_seconds=LEASE)
                        for number, notification in enumerate(stream):
                            receiver.saw(notification)
                            if number % 3 == 0:  # acknowledged once the answer is back
                                company.acknowledge_notifications([notification.id])
                                receiver.acknowledged.add(notification.id)
                    else:
                        handed = company.notify.FetchNotifications(pb.FetchNotificationsRequest(
                            max_notifications=20, lease_seconds=LEASE)).notifications  # fmt: skip
                        for notification in handed:
                            receiver.saw(notification)

        callers = [threading.Thread(target=busy, args=(kind,)) for kind in (True, False)]
        for caller in callers:
            caller.start()
        time.sleep(0.2 + rounds.random() * 0.5)
        node.kill()
        stop.set()
        for caller in callers:
            caller.join(timeout=30)
        node.start()
    _receive_all(node, receiver, sent)
