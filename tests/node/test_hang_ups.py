"""Clients that hang up on followed streams, a hundred times each, over gRPC and REST: the node
stays up, every stream ends on its side (the audit journal records each as CANCELLED), and
SIGTERM then stops the process within its grace period."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from interops.dsn.v1 import dsn_pb2, dsn_pb2_grpc
from interops.notify.v1 import notify_pb2, notify_pb2_grpc
from interops.registry.v1 import registry_pb2, registry_pb2_grpc
from sqlalchemy import select

from clients.client import Client
from clients.token_credentials import ChainCredentials, OrganismCredentials
from registry.audit.schema import audit_records
from registry.kernel.database import open_engine
from server.cli.demo_trust import DECLARANT, DECLARANT_PASSWORD
from tests.running_node import session_party
from token_suite.chain import Signer, session_signer, sign_proof
from token_suite.keys import key_id_of, public_bytes, read_private_key
from token_suite.wire import service_of, to_text

pytestmark = pytest.mark.slow

HANG_UPS = 100
GRACE_SECONDS = 3.0
REGISTRY = "interops.registry.v1.RegistryService"
DEPOSIT = "interops.dsn.v1.DepositService"
DELIVERY = "interops.dsn.v1.DeliveryService"
NOTIFY = "interops.notify.v1.NotificationService"


@dataclass
class ServedNode:
    process: subprocess.Popen[str]
    address: str
    web_port: int
    database_url: str
    keys_dir: Path


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedNode]:
    """`interops serve --demo-data` in a process of its own, with its web adapter."""
    data_dir = tmp_path_factory.mktemp("served")
    env = {
        **os.environ,
        "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
        "INTEROPS_HTTP_ADDRESS": "127.0.0.1:0",
        "INTEROPS_DATA_DIR": str(data_dir),
        "INTEROPS_DATABASE_URL": database_url,
        "INTEROPS_TRACING_EXPORTER": "none",
        "INTEROPS_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "INTEROPS_FEED_POLL_SECONDS": "0.05",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "clients.cli", "serve", "--demo-data"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    address, web_port = "", 0
    for line in process.stdout:
        if found := re.search(r"serving on (\S+)", line):
            address = found.group(1)
        if found := re.search(r"web adapter on http://[^:]+:(\d+)", line):
            web_port = int(found.group(1))
            break
    assert address and web_port, "the node did not start"
    try:
        yield ServedNode(process, address, web_port, database_url, data_dir / "demo-keys")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _declarant_chain(node: ServedNode) -> ChainCredentials:
    """The declarant's chain, held by a session key that proves each call."""
    session = session_signer("NET-ENTREPRISES")
    with Client(node.address) as anonymous:
        issued = anonymous.sign_in(*DECLARANT, DECLARANT_PASSWORD, holder=session_party(session),
                                   audience=[REGISTRY, DEPOSIT, NOTIFY])  # fmt: skip
    return ChainCredentials(issued.token, session)


def _urssaf(node: ServedNode) -> OrganismCredentials:
    key = read_private_key(node.keys_dir / "URSSAF.pem")
    signer = Signer("URSSAF", key_id_of(public_bytes(key)), key)
    return OrganismCredentials(node.address, signer, [REGISTRY, DELIVERY])


def _records(node: ServedNode) -> list[tuple[str, str, int]]:
    """(method, outcome, at) of every call the node recorded so far."""
    engine = open_engine(node.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(audit_records.c.method, audit_records.c.outcome, audit_records.c.at)
            ).all()
    finally:
        engine.dispose()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def _settled(node: ServedNode) -> int:
    """Waits until the node has recorded nothing new for a second; returns the time of its
    last record. A stream still open then (leaked) is recorded only when the node stops."""
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 1.0:
        records = _records(node)
        if len(records) != seen:
            seen, quiet_since = len(records), time.monotonic()
        time.sleep(0.2)
    return max(at for _, _, at in records)


def _hang_up_grpc(node: ServedNode, declarant: ChainCredentials) -> None:
    with grpc.insecure_channel(node.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        deposits = dsn_pb2_grpc.DepositServiceStub(channel)
        deliveries = dsn_pb2_grpc.DeliveryServiceStub(channel)
        notify = notify_pb2_grpc.NotificationServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        urssaf = _urssaf(node)
        streams: list[Callable[[], Any]] = [
            lambda: registry.WatchChanges(
                registry_pb2.WatchChangesRequest(follow=True),
                metadata=tuple(urssaf.metadata(f"/{REGISTRY}/WatchChanges")),
            ),
            lambda: deliveries.StreamDeliveries(
                dsn_pb2.StreamDeliveriesRequest(),
                metadata=tuple(urssaf.metadata(f"/{DELIVERY}/StreamDeliveries")),
            ),
            lambda: deposits.WatchReturns(
                dsn_pb2.WatchReturnsRequest(follow=True),
                metadata=tuple(declarant.metadata(f"/{DEPOSIT}/WatchReturns")),
            ),
            lambda: notify.StreamNotifications(
                notify_pb2.StreamNotificationsRequest(),
                metadata=tuple(declarant.metadata(f"/{NOTIFY}/StreamNotifications")),
            ),
            lambda: health.Watch(health_pb2.HealthCheckRequest()),
        ]
        for open_stream in streams:
            for number in range(HANG_UPS):
                call = open_stream()
                time.sleep(0.005 * (number % 7))  # before, during and after the first message
                assert not call.done(), "a followed stream ended by itself"
                call.cancel()


def _hang_up_rest(node: ServedNode, declarant: ChainCredentials) -> None:
    """HTTP clients that ask for a stream and go away, before its first line or after."""
    streams = [
        (f"/v1/{DEPOSIT}/WatchReturns", b'{"follow": true}'),
        (f"/v1/{NOTIFY}/StreamNotifications", b"{}"),
        (f"/v1/{REGISTRY}/WatchChanges", b'{"follow": true}'),
    ]
    for path, body in streams:
        for number in range(HANG_UPS):
            with _rest_stream(node, declarant, path, body):
                time.sleep(0.01 * (number % 5))


@contextlib.contextmanager
def _rest_stream(
    node: ServedNode, declarant: ChainCredentials, path: str, body: bytes
) -> Iterator[None]:
    method, token = path.removeprefix("/v1"), declarant.token
    assert declarant.holder is not None
    proof = sign_proof(declarant.holder, method, service_of(method), token)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {to_text(token)}\r\ninterops-proof: {to_text(proof)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", node.web_port), timeout=10) as connection:
        connection.sendall(request)
        yield


FOLLOWED = ("WatchChanges", "StreamDeliveries", "WatchReturns", "StreamNotifications")


def test_hang_ups_on_followed_streams_then_sigterm(served: ServedNode) -> None:
    declarant = _declarant_chain(served)
    _hang_up_grpc(served, declarant)
    _hang_up_rest(served, declarant)
    with Client(served.address) as anonymous:
        assert anonymous.check_health()
    settled = _settled(served)
    ended = Counter(m for m, outcome, _ in _records(served) if outcome == "CANCELLED")
    # (A stream cancelled before the node took it is not recorded: not all of them are.)
    assert all(ended[method] > HANG_UPS / 2 for method in FOLLOWED), ended
    # Two streams left open, over gRPC and over REST, do not hold the stop back.
    with (
        grpc.insecure_channel(served.address) as channel,
        _rest_stream(served, declarant, f"/v1/{DEPOSIT}/WatchReturns", b'{"follow": true}'),
    ):
        follow: Any = dsn_pb2_grpc.DepositServiceStub(channel).WatchReturns(
            dsn_pb2.WatchReturnsRequest(follow=True),
            metadata=tuple(declarant.metadata(f"/{DEPOSIT}/WatchReturns")),
        )
        time.sleep(0.5)
        served.process.send_signal(signal.SIGTERM)
        # The grace period, plus the writing of what is queued and the closing of the stores.
        assert served.process.wait(timeout=GRACE_SECONDS + 10) == 0
        follow.cancel()
    # Every hung-up stream had ended before: only the two left open ended at the stop.
    late = [(m, o) for m, o, at in _records(served) if at > settled and m in FOLLOWED]
    assert sorted(late) == [("WatchReturns", "CANCELLED")] * 2, late
