"""A node stopped at any step of a deposit's way picks it up on restart: nothing lost, nothing
delivered twice (the same delivery ids, one CCO), and files at rest are sealed (deposits with
the node's key, shares to their organisms' encryption keys)."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath

import pytest
from interops.dsn.v1 import dsn_pb2 as pb

from clients.client import Client
from registry.dsn.deposit_store import DepositStore, ShareFile
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.kernel.sealing import SealError, load_or_create_key, open_sealed
from registry.trust.declarant_store import DeclarantStore
from tests.dsn import MONTHLY_ORGANISMS
from tests.running_node import RunningNode
from token_suite.sealed_share import open_share

DEPOSIT = "interops.dsn.v1.DepositService"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic


def _start(database_url: str, data_dir: Path, *, pipeline: bool) -> RunningNode:
    node = RunningNode(database_url, data_dir)
    if not pipeline:  # the state a crash leaves: the node took the deposit, did nothing more
        node.run(node.node.pipeline.stop())
    return node


def _ensure_declarant(node: RunningNode) -> None:
    store = DeclarantStore(node.node.engine)
    if not store.exists(FIRM, "Martin", "Camille"):
        store.create(FIRM, "Martin", "Camille", "pw", [("dsn.deposit", DEMO_COMPANY.siren)])


def _declarant(node: RunningNode) -> Client:
    return Client(node.address, credentials=node.sign_in(FIRM, "Martin", "Camille", "pw",
                                                         audience=[DEPOSIT]))  # fmt: skip


def _wait_routed(store: DepositStore, deposit_id: str) -> None:
    async def wait() -> None:
        for _ in range(600):
            record = store.get(deposit_id)
            if record is not None and record.state == "ROUTED":
                return
            await asyncio.sleep(0.05)
        raise AssertionError("not routed")

    asyncio.run(wait())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_deposits_left_at_each_step_are_finished_once_after_a_restart(
    database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    first = _start(database_url, data_dir, pipeline=False)
    _ensure_declarant(first)
    keys = first.encryption_keys()  # the organisms' keys, in the database for every start
    received, validated = tmp_path / "received.dsn", tmp_path / "validated.dsn"
    received.write_bytes(b"".join(generate(3, order=1)))
    validated.write_bytes(b"".join(generate(3, order=2)))
    with _declarant(first) as declarant:
        left_received = declarant.submit_deposit(received)
        left_validated = declarant.submit_deposit(validated)
    # One deposit stops after validation; a share of the other was half written.
    pipeline = first.node.pipeline  # as if it stopped between validation's and routing's commits
    record = first.node.deposits.get(left_validated.id)
    assert record is not None
    files: dict[str, ShareFile] = {}
    report, relations, _ = pipeline._read(record, files, [])
    pipeline._record_validation(record.id, report, relations)
    for file in files.values():
        file.discard()
    kept = first.node.pipeline.files
    half = kept.blobs.writer(kept.share(f"{left_received.id}.URSSAF"))
    half.write(b"IOPSEAL1 cut short")  # never committed: the node stops
    store = first.node.deposits
    assert store.get(left_received.id).state == "RECEIVED"  # type: ignore[union-attr]
    assert store.get(left_validated.id).state == "VALIDATED"  # type: ignore[union-attr]
    first.stop()

    second = _start(database_url, data_dir, pipeline=True)
    try:
        store = second.node.deposits
        for deposit_id in (left_received.id, left_validated.id):
            _wait_routed(store, deposit_id)
        with _declarant(second) as declarant:
            for deposit_id in (left_received.id, left_validated.id):
                deposit = declarant.get_deposit(deposit_id)
                assert {d.organism for d in deposit.deliveries} == MONTHLY_ORGANISMS
                kinds = [r.kind for r in declarant.list_returns(deposit_id)]
                assert kinds == [pb.RETURN_KIND_CCO]  # validated once, not twice
        ids = {d.id for d in store.get(left_received.id).deliveries}  # type: ignore[union-attr]
    finally:
        second.stop()

    # A third start changes nothing: same deliveries, still one CCO each.
    third = _start(database_url, data_dir, pipeline=True)
    try:
        record = third.node.deposits.get(left_received.id)
        assert record is not None and {d.id for d in record.deliveries} == ids
        kept = third.node.pipeline.files
        share = kept.blobs.read_bytes(kept.share(f"{left_received.id}.URSSAF"))
        plain = open_share([share], f"{left_received.id}.URSSAF", keys["URSSAF"])
        assert b"".join(plain).startswith(b"S10")
    finally:
        third.stop()


def test_deposits_and_shares_are_sealed_at_rest(
    database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    node = _start(database_url, data_dir, pipeline=True)
    try:
        _ensure_declarant(node)
        node.encryption_keys()
        path = tmp_path / "clear.dsn"
        path.write_bytes(b"".join(generate(2, order=3)))
        with _declarant(node) as declarant:
            deposit = declarant.submit_deposit(path)
        _wait_routed(node.node.deposits, deposit.id)
        files = node.node.pipeline.files
        record = node.node.deposits.get(deposit.id)
        assert record is not None and record.deliveries
        names = [files.deposit(deposit.id), *(files.share(d.id) for d in record.deliveries)]
        stored = [files.blobs.read_bytes(name) for name in names]
        clear = (b"MARTIN", b"BERNARD", b"S21.G00.30.001")
        assert all(not any(text in data for text in clear) for data in stored)
        # The node's key opens its deposit; another opens nothing; a flipped byte is found.
        key = load_or_create_key(data_dir / "keys" / "data.key")
        file_name = PurePosixPath(names[0]).name
        assert b"".join(open_sealed([stored[0]], file_name, key)) == path.read_bytes()
        with pytest.raises(SealError):
            b"".join(open_sealed([stored[0]], file_name, bytes(32)))
        tampered = bytearray(stored[0])
        tampered[40] ^= 1
        with pytest.raises(SealError):
            b"".join(open_sealed([bytes(tampered)], file_name, key))
        with pytest.raises(SealError):
            b"".join(open_sealed([stored[0][:-10]], file_name, key))
    finally:
        node.stop()


def test_a_deposit_that_cannot_be_processed_does_not_hold_up_the_others(
    database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    first = _start(database_url, data_dir, pipeline=False)
    _ensure_declarant(first)
    first.encryption_keys()
    lost, fine = tmp_path / "lost.dsn", tmp_path / "fine.dsn"
    lost.write_bytes(b"".join(generate(1, order=4)))
    fine.write_bytes(b"".join(generate(1, order=5)))
    with _declarant(first) as declarant:
        broken = declarant.submit_deposit(lost)
        healthy = declarant.submit_deposit(fine)
    files = first.node.pipeline.files
    files.delete(files.deposit(broken.id))  # its file is gone (a disk fault)
    first.stop()
    second = _start(database_url, data_dir, pipeline=True)
    try:
        _wait_routed(second.node.deposits, healthy.id)
        record = second.node.deposits.get(broken.id)
        assert record is not None and record.state == "RECEIVED"  # kept, retried, not lost
    finally:
        second.stop()
