"""Deliveries stored by hand on a node whose pipeline is stopped: a deposit validated, its
share written with the node's DepositFiles.share_writer (sealed to the organism's current
encryption key, as the pipeline does for every organism concerned) and recorded as routed."""

from __future__ import annotations

import hashlib

from interops.dsn.v1 import dsn_pb2 as pb

from clients.client import Client
from registry.dsn.deposit_store import (
    DepositFiles,
    NewDeposit,
    RoutedShare,
    Validated,
    delivery_id,
)
from registry.dsn.synth import DEMO_COMPANY, generate
from tests.running_node import RunningNode
from token_suite.chain import Signer

DELIVERY = "interops.dsn.v1.DeliveryService"
# A share holds NIRs and names: the synthetic DSN's first employee.
PLAIN = b"".join(generate(2, order=901))


def shares_of(node: RunningNode) -> DepositFiles:
    """Where the node stores deposits and shares."""
    files: DepositFiles = node.node.pipeline.files
    return files


def stored(node: RunningNode, delivery: str) -> bytes:
    """A share as the node stores it."""
    files = shares_of(node)
    return files.blobs.read_bytes(files.share(delivery))


def validated(node: RunningNode, plain: bytes) -> str:
    """A deposit of `plain`, validated (conformant) and waiting to be routed: its id."""
    store = node.node.deposits
    record, _ = store.create(NewDeposit(
        declarant="declarant:test", request_id=None, file_name="sealed.dsn", size=len(plain),
        sha256=hashlib.sha256(plain).digest(), nature="01", sirets=(DEMO_COMPANY.siret,),
    ))  # fmt: skip
    outcome = Validated(conformant=True, norm_version="P25V01", nature="01", type="01",
                        month="01032026", individuals=2, blocking=0, warnings=0)  # fmt: skip
    store.record_validation(record.id, outcome, b"{}")
    return record.id


def routed(node: RunningNode, organism: str, plain: bytes = PLAIN) -> str:
    """A validated deposit routed to `organism`, its share sealed by the node: the delivery."""
    store = node.node.deposits
    deposit_id = validated(node, plain)
    wanted = delivery_id(deposit_id, organism)
    writer = shares_of(node).share_writer(wanted, organism)
    writer.write(plain)
    writer.close()
    store.record_routing(deposit_id, [
        RoutedShare(organism, writer.size, writer.sha256, key_id=writer.key_id)
    ])  # fmt: skip
    return wanted


def organism_client(node: RunningNode, signer: Signer) -> Client:
    """A client of the node's DeliveryService as the organism of `signer`."""
    return Client(node.address, credentials=node.credentials(signer, audience=(DELIVERY,)))


def leased(client: Client, wanted: str) -> pb.Delivery:
    """Leases the caller's pending deliveries; the one of id `wanted`."""
    (delivery,) = [d for d in client.fetch_deliveries(max_deliveries=100) if d.id == wanted]
    return delivery
