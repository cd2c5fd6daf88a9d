"""Deliveries by the batch (issue 21, point 3: an organism takes its shares without a call per
share): a lease brings the shares that fit in what the organism asks for, byte for byte what
DownloadDelivery streams, and AcknowledgeDeliveries takes up to 100 receipts at once, all or
none. The attacks: another organism's delivery slipped into a batch, a receipt that does not
verify among good ones, and an organism leasing with contents sees only its own shares.

The node's pipeline is stopped: deliveries are stored by hand (tests/dsn/stored_shares.py).
"""

from __future__ import annotations

import hashlib

import pytest
from interops.dsn.v1 import dsn_pb2 as pb

from clients.dsn_calls import open_stored_share
from clients.errors import InvalidArgument, NotFound
from tests.dsn import stored_shares as by_hand
from tests.running_node import RunningNode, provision_encryption_key
from token_suite.chain import Signer
from token_suite.keys import public_bytes
from token_suite.receipts import receipt_valid

BIGGER = by_hand.PLAIN * 40


@pytest.fixture(scope="module")
def quiet(node: RunningNode) -> RunningNode:
    """The module's node with its pipeline stopped: deliveries are stored by the tests."""
    node.run(node.node.pipeline.stop())
    return node


@pytest.fixture(scope="module")
def organisms(quiet: RunningNode) -> dict[str, tuple[Signer, bytes]]:
    """URSSAF and DGFIP, each with a signing key (right dsn.deliveries) and an encryption key
    (private)."""
    return {
        code: (quiet.organism(code, code, rights=("dsn.deliveries",)),
               provision_encryption_key(quiet.node.engine, code))
        for code in ("URSSAF", "DGFIP")
    }  # fmt: skip


def _state(node: RunningNode, delivery: str) -> str:
    found = node.node.deposits.delivery(delivery)
    assert found is not None
    return str(found.state)


def test_a_lease_brings_the_shares_that_fit_byte_for_byte_what_a_download_gives(
    quiet: RunningNode, organisms: dict[str, tuple[Signer, bytes]]
) -> None:
    signer, private = organisms["URSSAF"]
    small, bigger, other = (by_hand.routed(quiet, "URSSAF"),
                            by_hand.routed(quiet, "URSSAF", BIGGER),
                            by_hand.routed(quiet, "URSSAF"))  # fmt: skip
    dgfip = by_hand.routed(quiet, "DGFIP")
    budget = len(by_hand.stored(quiet, small)) + len(by_hand.stored(quiet, other))
    assert len(by_hand.stored(quiet, bigger)) > budget
    with by_hand.organism_client(quiet, signer) as system:
        shares = system.fetch_shares(max_deliveries=100, max_content_bytes=budget)
        leased = {delivery.id: content for delivery, content in shares}
        # The small ones came whole, the bigger one did not fit and is downloaded.
        assert set(leased) == {small, bigger, other}
        assert leased[bigger] is None
        for delivery in (small, other):
            content = leased[delivery]
            assert content is not None
            assert content == system.download_delivery(delivery)  # as stored: sealed
            assert open_stored_share(content, delivery, private) == by_hand.PLAIN
        assert system.download_share(bigger, private) == BIGGER
    assert dgfip not in leased  # another organism's share never comes with URSSAF's lease
    # Without asking for contents, none come.
    again = by_hand.routed(quiet, "URSSAF")
    with by_hand.organism_client(quiet, signer) as system:
        assert [content for _, content in system.fetch_shares(max_content_bytes=0)] == [None]
    assert _state(quiet, again) == "SENT"


def test_a_batch_of_receipts_acknowledges_all_or_none(
    quiet: RunningNode, organisms: dict[str, tuple[Signer, bytes]]
) -> None:
    signer, _ = organisms["URSSAF"]
    dgfip_signer, _ = organisms["DGFIP"]
    first, second = by_hand.routed(quiet, "URSSAF"), by_hand.routed(quiet, "URSSAF")
    theirs = by_hand.routed(quiet, "DGFIP")
    digest = hashlib.sha256(by_hand.PLAIN).digest()
    with by_hand.organism_client(quiet, dgfip_signer) as dgfip:
        (their_delivery,) = [d for d in dgfip.fetch_deliveries(max_deliveries=100)
                             if d.id == theirs]  # fmt: skip
    with by_hand.organism_client(quiet, signer) as system:
        mine = {d.id: d for d in system.fetch_deliveries(max_deliveries=100)}
        received = [(mine[first], digest), (mine[second], digest)]
        # Another organism's delivery in the batch: not found, and nothing acknowledged.
        with pytest.raises(NotFound) as not_mine:
            system.acknowledge_deliveries([*received, (their_delivery, digest)], signer)
        assert not_mine.value.reason == "DELIVERY_NOT_FOUND"
        # A receipt over other bytes among good ones: refused, named, nothing acknowledged.
        with pytest.raises(InvalidArgument) as bad:
            system.acknowledge_deliveries(
                [received[0], (mine[second], hashlib.sha256(b"other").digest())], signer
            )
        assert bad.value.reason == "BAD_RECEIPT"
        assert [v.field for v in bad.value.violations] == ["receipts[1].signature"]
        assert {_state(quiet, first), _state(quiet, second), _state(quiet, theirs)} == {"SENT"}
        done = system.acknowledge_deliveries(received, signer)
        assert [(d.id, d.state) for d in done] == [
            (first, pb.DELIVERY_STATE_ACKNOWLEDGED), (second, pb.DELIVERY_STATE_ACKNOWLEDGED)
        ]  # fmt: skip
        # Again: harmless, the first receipts stand.
        kept = {d: quiet.node.deposits.delivery(d) for d in (first, second)}
        system.acknowledge_deliveries(received, signer)
    for delivery, record in kept.items():
        now = quiet.node.deposits.delivery(delivery)
        assert now is not None and record is not None and now.receipt_signature is not None
        assert now.receipt_signature == record.receipt_signature
        assert now.acknowledged_at == record.acknowledged_at
        assert receipt_valid(public_bytes(signer.key), delivery, digest, now.receipt_signature)
    assert _state(quiet, theirs) == "SENT"
