"""Deposits through a real node: AEE and ARE, idempotence, states, the CCO/BAN as first return,
routing to each organism of exactly its share, leases, signed receipts, CRMs, and who sees what."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interops.dsn.v1 import dsn_pb2 as pb

from clients.client import Client
from clients.errors import InvalidArgument, NotFound, PermissionDenied
from registry.dsn.deposit_store import ShareFile, delivery_id
from registry.dsn.entitlement import OrganismRules, load_identification, load_rules
from registry.dsn.reader import read_rubrics
from registry.dsn.scan import scan_and_read_whole, scan_whole
from registry.dsn.synth import DEMO_COMPANY, broken, company, generate
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.declarant_store import DeclarantStore
from server.dsn import pipeline as pipeline_module
from server.dsn.pipeline import KEPT_READINGS
from server.dsn.reading_pool import WHOLE_BYTES
from tests.dsn import MONTHLY_ORGANISMS
from tests.running_node import RunningNode
from token_suite.chain import Signer

DEPOSIT = "interops.dsn.v1.DepositService"
DELIVERY = "interops.dsn.v1.DeliveryService"
ORGANISM_KINDS = {"URSSAF": "URSSAF", "DGFIP": "DGFIP", "AGIRC-ARRCO": "AGIRC_ARRCO",
                  "PREVOYANCE": "OC", "FRANCE-TRAVAIL": "FRANCE_TRAVAIL",
                  "CNAM": "CNAM"}  # fmt: skip
OTHER_COMPANY = company(siret_of(siren_at(7), 1))


@pytest.fixture(scope="module")
def declarant(node: RunningNode) -> Iterator[Client]:
    """A declarant of the demo firm, entitled to deposit for the demo company only."""
    firm = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
    DeclarantStore(node.node.engine).create(
        firm, "Martin", "Camille", "deposit pw", [("dsn.deposit", DEMO_COMPANY.siren)]
    )
    chain = node.sign_in(firm, "Martin", "Camille", "deposit pw", audience=[DEPOSIT])
    with Client(node.address, credentials=chain, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def other_declarant(node: RunningNode) -> Iterator[Client]:
    """A declarant of another company."""
    DeclarantStore(node.node.engine).create(
        OTHER_COMPANY.siret, "Roux", "Paul", "other pw", [("dsn.deposit", OTHER_COMPANY.siren)]
    )
    chain = node.sign_in(OTHER_COMPANY.siret, "Roux", "Paul", "other pw", audience=[DEPOSIT])
    with Client(node.address, credentials=chain) as client:
        yield client


@pytest.fixture(scope="module", autouse=True)
def encryption_keys(node: RunningNode) -> dict[str, bytes]:
    """Every organism's encryption key (private): shares are sealed to them, so deposits route,
    and each organism opens its own with it."""
    return node.encryption_keys()


@pytest.fixture(scope="module")
def organisms(node: RunningNode) -> dict[str, Signer]:
    return {code: node.organism(code, kind, rights=("dsn.deliveries",))
            for code, kind in ORGANISM_KINDS.items()}  # fmt: skip


def _entitled(rules: OrganismRules, identifying: dict[str, frozenset[str]], rubric: str) -> bool:
    """Whether a share of the organism may hold the rubric: of a block it is entitled to, an
    identifying rubric of an ancestor, or the totals."""
    block = rubric[:10]
    rule = rules.blocks.get(block)
    if rule is not None and (rule.rubrics is None or rubric in rule.rubrics):
        return True
    return rubric in identifying.get(block, ()) or block == "S90.G00.90"


def _as(node: RunningNode, signer: Signer) -> Client:
    return Client(node.address, credentials=node.credentials(signer, audience=(DELIVERY,)))


def _file(tmp_path: Path, data: bytes, name: str = "dsn.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _settled(client: Client, deposit_id: str) -> pb.Deposit:
    """The deposit once validated and routed (or rejected)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        deposit = client.get_deposit(deposit_id)
        if deposit.state in (pb.DEPOSIT_STATE_ROUTED, pb.DEPOSIT_STATE_REJECTED):
            return deposit
        time.sleep(0.05)
    raise AssertionError(f"deposit {deposit_id} did not settle")


def test_a_monthly_dsn_gets_an_aee_then_a_cco_and_each_organism_only_its_share(
    node: RunningNode, declarant: Client, organisms: dict[str, Signer], tmp_path: Path,
    encryption_keys: dict[str, bytes],
) -> None:  # fmt: skip
    data = b"".join(generate(5, order=101))
    deposit = declarant.submit_deposit(_file(tmp_path, data), request_id="month-101")
    assert deposit.receipt == pb.RECEIPT_AEE and deposit.state == pb.DEPOSIT_STATE_RECEIVED
    assert deposit.sha256 == hashlib.sha256(data).digest() and deposit.size == len(data)
    assert deposit.sirets == [DEMO_COMPANY.siret] and deposit.nature == "01"
    settled = _settled(declarant, deposit.id)
    assert settled.state == pb.DEPOSIT_STATE_ROUTED and settled.validation.blocking == 0
    assert {d.organism for d in settled.deliveries} == MONTHLY_ORGANISMS
    (first,) = declarant.list_returns(deposit.id)
    assert first.kind == pb.RETURN_KIND_CCO and first.organism == ""
    rules, identifying = load_rules(), load_identification().rubrics
    for organism in sorted(MONTHLY_ORGANISMS):
        with _as(node, organisms[organism]) as system:
            leased = [d for d in system.fetch_deliveries(max_deliveries=100)
                      if d.deposit_id == deposit.id]  # fmt: skip
            assert [d.id for d in leased] == [delivery_id(deposit.id, organism)]
            share = system.download_share(leased[0].id, encryption_keys[organism])
        assert hashlib.sha256(share).digest() == leased[0].sha256
        lines = list(read_rubrics(io.BytesIO(share)))
        # No rubric the organism is not entitled to reaches it.
        assert [
            line.rubric for line in lines
            if not _entitled(rules[organism], identifying, line.rubric)
        ] == []  # fmt: skip
        payments = {line.value for line in lines if line.rubric == "S21.G00.20.001"}
        assert len(payments) <= 1  # only its own payment, never another organism's
        if organism != "DGFIP":
            assert not any(line.rubric == "S21.G00.50.006" for line in lines)  # the PAS rate
        if organism == "DGFIP":
            assert not any(line.rubric.startswith(("S21.G00.81", "S21.G00.40")) for line in lines)
            assert sum(line.rubric == "S21.G00.50.006" for line in lines) == 5


def test_the_same_request_id_or_the_same_content_gives_the_same_deposit(
    declarant: Client, tmp_path: Path
) -> None:
    data = b"".join(generate(2, order=102))
    first = declarant.submit_deposit(_file(tmp_path, data), request_id="retry-102")
    again = declarant.submit_deposit(_file(tmp_path, data, "other.txt"), request_id="retry-102")
    same_bytes = declarant.submit_deposit(_file(tmp_path, data, "third.txt"))
    assert first.id == again.id == same_bytes.id
    assert sum(1 for d in declarant.list_deposits() if d.id == first.id) == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY_FILE"),
        (b"hello, world\n", "NOT_A_DSN"),
        (broken("unsupported-version"), "UNSUPPORTED_VERSION"),
        (b"".join(generate(1, declared=OTHER_COMPANY)), "NOT_ENTITLED"),
    ],
)
def test_a_file_refused_as_a_whole_gets_an_are_and_goes_nowhere(
    declarant: Client, tmp_path: Path, data: bytes, code: str
) -> None:
    deposit = declarant.submit_deposit(_file(tmp_path, data))
    assert deposit.receipt == pb.RECEIPT_ARE and deposit.state == pb.DEPOSIT_STATE_REJECTED
    assert deposit.rejection_code == code and deposit.rejection_message
    assert declarant.get_deposit(deposit.id).deliveries == []


def test_a_non_conformant_file_gets_an_aee_then_its_ban_and_is_not_routed(
    declarant: Client, tmp_path: Path
) -> None:
    deposit = declarant.submit_deposit(_file(tmp_path, broken("duplicate-nir")))
    assert deposit.receipt == pb.RECEIPT_AEE
    settled = _settled(declarant, deposit.id)
    assert settled.state == pb.DEPOSIT_STATE_REJECTED and settled.deliveries == []
    assert settled.rejection_code == "NOT_CONFORMANT" and settled.validation.blocking == 1
    (ban,) = declarant.list_returns(deposit.id)
    assert ban.kind == pb.RETURN_KIND_BAN and b"CCH-14" in ban.content
    assert ban.content_type == "application/json"


def test_events_are_routed_to_their_organism_and_offered_before_monthly_ones(
    node: RunningNode, declarant: Client, organisms: dict[str, Signer], tmp_path: Path
) -> None:
    monthly = declarant.submit_deposit(_file(tmp_path, b"".join(generate(2, order=103)), "m"))
    sick = declarant.submit_deposit(
        _file(tmp_path, b"".join(generate(1, nature="04", order=104)), "s")
    )
    end = declarant.submit_deposit(
        _file(tmp_path, b"".join(generate(1, nature="07", order=105)), "e")
    )
    # The sick leave: CNAM, and the OC of the employee's affiliation (prévoyance).
    assert {d.organism for d in _settled(declarant, sick.id).deliveries} == {"CNAM", "PREVOYANCE"}
    assert "FRANCE-TRAVAIL" in {d.organism for d in _settled(declarant, end.id).deliveries}
    _settled(declarant, monthly.id)
    with _as(node, organisms["AGIRC-ARRCO"]) as system:
        leased = system.fetch_deliveries(max_deliveries=100)
    natures = [d.nature for d in leased]
    assert natures.index("07") < natures.index("01")  # the event first


def test_a_lease_that_runs_out_offers_the_delivery_again_under_the_same_id(
    node: RunningNode, declarant: Client, organisms: dict[str, Signer], tmp_path: Path
) -> None:
    deposit = declarant.submit_deposit(
        _file(tmp_path, b"".join(generate(1, nature="05", order=106)))
    )
    _settled(declarant, deposit.id)
    wanted = delivery_id(deposit.id, "CNAM")
    with _as(node, organisms["CNAM"]) as system:
        first = [d for d in system.fetch_deliveries(lease_seconds=10) if d.id == wanted]
        assert first and first[0].attempts == 1
        # Leased: not offered again while the lease runs.
        assert wanted not in {d.id for d in system.fetch_deliveries()}
        node.run(_expire_leases(node))
        again = [d for d in system.fetch_deliveries() if d.id == wanted]
        assert again and again[0].attempts == 2 and again[0].sha256 == first[0].sha256


async def _expire_leases(node: RunningNode) -> None:
    from sqlalchemy import update

    from registry.dsn.schema import deliveries

    with node.node.engine.begin() as connection:
        connection.execute(update(deliveries).where(deliveries.c.state == "SENT")
                           .values(lease_until=1))  # fmt: skip


def test_acknowledgement_needs_a_receipt_signed_by_the_organism_over_what_it_received(
    node: RunningNode, declarant: Client, organisms: dict[str, Signer], tmp_path: Path,
    encryption_keys: dict[str, bytes],
) -> None:  # fmt: skip
    deposit = declarant.submit_deposit(
        _file(tmp_path, b"".join(generate(1, nature="04", order=107)))
    )
    _settled(declarant, deposit.id)
    wanted = delivery_id(deposit.id, "CNAM")
    with _as(node, organisms["CNAM"]) as system:
        (delivery,) = [d for d in system.fetch_deliveries(max_deliveries=100) if d.id == wanted]
        with pytest.raises(InvalidArgument) as wrong_digest:
            system.acknowledge_delivery(delivery, organisms["CNAM"], sha256=b"\0" * 32)
        assert wrong_digest.value.reason == "BAD_RECEIPT"
        with pytest.raises(PermissionDenied) as foreign_key:
            system.acknowledge_delivery(delivery, organisms["URSSAF"])
        assert foreign_key.value.reason == "UNKNOWN_RECEIPT_KEY"
        received = system.download_share(delivery.id, encryption_keys["CNAM"])
        done = system.acknowledge_delivery(
            delivery, organisms["CNAM"], hashlib.sha256(received).digest()
        )
        assert done.state == pb.DELIVERY_STATE_ACKNOWLEDGED
        assert done.receipt_key_id == organisms["CNAM"].key_id
        assert system.acknowledge_delivery(delivery, organisms["CNAM"]).acknowledged_at == (
            done.acknowledged_at
        )
        assert wanted not in {d.id for d in system.fetch_deliveries(max_deliveries=100)}
    settled = {d.organism: d.state for d in declarant.get_deposit(deposit.id).deliveries}
    assert settled == {
        "CNAM": pb.DELIVERY_STATE_ACKNOWLEDGED,
        "PREVOYANCE": pb.DELIVERY_STATE_PENDING,
    }
    # Stored with the deposit: the receipt verifies offline with the organism's public key.
    from token_suite.receipts import receipt_valid

    row = node.node.deposits.delivery(wanted)
    assert row is not None and row.receipt_signature is not None
    public = organisms["CNAM"].key.public_key()
    assert receipt_valid(public, wanted, row.sha256, row.receipt_signature)


def test_crms_flow_back_to_the_declarant_only_from_organisms_it_was_delivered_to(
    node: RunningNode, declarant: Client, organisms: dict[str, Signer], tmp_path: Path
) -> None:
    deposit = declarant.submit_deposit(_file(tmp_path, b"".join(generate(2, order=108))))
    _settled(declarant, deposit.id)
    rates = [pb.PasRate(nir="1600101001001", rate="7.50", rate_id="42", applies_from="01042026")]
    with _as(node, organisms["DGFIP"]) as dgfip:
        crm = {"content": b"taux PAS", "pas_rates": rates, "request_id": "crm-1"}
        posted = dgfip.post_return(deposit.id, "92", pb.RETURN_STATUS_ACCEPTED, **crm)  # type: ignore[arg-type]
        again = dgfip.post_return(deposit.id, "92", pb.RETURN_STATUS_ACCEPTED, **crm)  # type: ignore[arg-type]
        assert posted.id == again.id
        with pytest.raises(InvalidArgument) as not_its_code:
            dgfip.post_return(deposit.id, "60", pb.RETURN_STATUS_ACCEPTED)
        assert not_its_code.value.reason == "CRM_CODE_NOT_YOURS"
    sick = declarant.submit_deposit(_file(tmp_path, b"".join(generate(1, nature="04", order=118))))
    _settled(declarant, sick.id)  # to CNAM and the OC, not to France Travail
    with _as(node, organisms["FRANCE-TRAVAIL"]) as france_travail, pytest.raises(NotFound):
        france_travail.post_return(sick.id, "40", pb.RETURN_STATUS_ACCEPTED)
    # The declared company is notified once (on its CRM topic), the retry sent nothing more.
    notices = [n for n in node.node.notify_store.list_for(DEMO_COMPANY.siren, 500, None)
               if n["template"] == "crm-posted" and deposit.id in n["body"]]  # fmt: skip
    assert len(notices) == 1 and notices[0]["topic"] == "CRM"
    assert "DGFIP" in notices[0]["subject"] and "92" in notices[0]["subject"]
    returns = list(declarant.list_returns(deposit.id))
    assert [r.kind for r in returns] == [pb.RETURN_KIND_CCO, pb.RETURN_KIND_CRM]
    assert returns[1].pas_rates[0].rate == "7.50" and returns[1].organism == "DGFIP"
    # Machine to machine: the stream of returns resumes after a position.
    streamed = list(declarant.watch_returns(returns[0].position))
    assert [r.id for r in streamed if r.deposit_id == deposit.id] == [returns[1].id]
    # Sealed at rest: the PAS rate and NIR are not in the database in clear.
    from sqlalchemy import select

    from registry.dsn.schema import deposit_returns

    with node.node.engine.connect() as connection:
        sealed = connection.execute(select(deposit_returns.c.sealed)).scalars().all()
    assert all(b"1600101001001" not in bytes(s) for s in sealed)


def test_a_declarant_sees_only_its_own_deposits_and_returns(
    node: RunningNode, declarant: Client, other_declarant: Client,
    organisms: dict[str, Signer], tmp_path: Path,
) -> None:  # fmt: skip
    mine = declarant.submit_deposit(_file(tmp_path, b"".join(generate(1, order=109))))
    theirs = other_declarant.submit_deposit(
        _file(tmp_path, b"".join(generate(1, declared=OTHER_COMPANY)), "theirs")
    )
    assert theirs.receipt == pb.RECEIPT_AEE
    for deposit_id in (mine.id,):
        with pytest.raises(NotFound):
            other_declarant.get_deposit(deposit_id)
        with pytest.raises(NotFound):
            other_declarant.list_returns(deposit_id).__next__()
        with pytest.raises(NotFound):
            next(other_declarant.watch_deposit(deposit_id))
    assert mine.id not in {d.id for d in other_declarant.list_deposits()}
    _settled(declarant, mine.id)
    _settled(other_declarant, theirs.id)
    assert {r.deposit_id for r in other_declarant.watch_returns()} == {theirs.id}
    # An organism's chain cannot deposit, and a declarant's cannot fetch deliveries.
    with _as(node, organisms["URSSAF"]) as system, pytest.raises(PermissionDenied):
        system.list_deposits().__next__()


def test_watch_follows_a_deposit_until_every_organism_acknowledged(
    node: RunningNode, declarant: Client, organisms: dict[str, Signer], tmp_path: Path
) -> None:
    deposit = declarant.submit_deposit(
        _file(tmp_path, b"".join(generate(1, nature="04", order=110)))
    )
    states = []
    watch = declarant.watch_deposit(deposit.id)
    for seen in watch:
        states.append(seen.state)
        if seen.state == pb.DEPOSIT_STATE_ROUTED:
            break
    for organism in ("CNAM", "PREVOYANCE"):  # the sick leave's organisms
        with _as(node, organisms[organism]) as system:
            for delivery in system.fetch_deliveries(max_deliveries=100):
                system.acknowledge_delivery(delivery, organisms[organism])
    # The stream ends by itself once every delivery is acknowledged.
    last = list(watch)[-1]
    order = [pb.DEPOSIT_STATE_RECEIVED, pb.DEPOSIT_STATE_VALIDATED, pb.DEPOSIT_STATE_ROUTED]
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states)
    assert [d.state for d in last.deliveries] == [pb.DELIVERY_STATE_ACKNOWLEDGED] * 2


def test_pages_of_deposits(declarant: Client) -> None:
    everything = [d.id for d in declarant.list_deposits(page_size=100)]
    paged = [d.id for d in declarant.list_deposits(page_size=2)]
    assert paged == everything and len(everything) > 4


def test_a_refused_file_may_be_sent_again_a_taken_one_not(
    declarant: Client, tmp_path: Path
) -> None:
    refused = _file(tmp_path, b"".join(generate(1, declared=OTHER_COMPANY, order=111)))
    first, second = declarant.submit_deposit(refused), declarant.submit_deposit(refused)
    assert first.receipt == second.receipt == pb.RECEIPT_ARE and first.id != second.id


@pytest.mark.parametrize("employees", [50, 800])
def test_a_deposit_is_answered_on_the_same_scan_whole_in_a_worker_or_as_it_arrives(
    declarant: Client, tmp_path: Path, employees: int
) -> None:
    # Up to WHOLE_BYTES a deposit is scanned whole in a worker process once all of it is
    # here; past it, in the node's process from its first bytes on as they arrive (1 MiB
    # chunks: the first two held, then streamed). Either way the answer is the scan's in
    # this process, and a fault in the held part is found.
    data = b"".join(generate(employees, order=700 + employees))
    assert (len(data) > WHOLE_BYTES) == (employees == 800)
    expected = scan_whole(data)
    deposit = declarant.submit_deposit(_file(tmp_path, data))
    assert deposit.receipt == pb.RECEIPT_AEE
    found = (list(deposit.sirets), deposit.nature, deposit.type, deposit.month)
    assert found == (expected.sirets, expected.nature, expected.type, expected.month)
    assert _settled(declarant, deposit.id).state == pb.DEPOSIT_STATE_ROUTED
    lines = data.split(b"\n")
    lines.insert(40, b"S21.G00.99.001,'misplaced'\r")  # a block the norm does not know
    faulty = b"\n".join(lines)
    assert scan_whole(faulty).ambiguity.startswith("line 41:")
    refused = declarant.submit_deposit(_file(tmp_path, faulty, "faulty.txt"))
    assert refused.receipt == pb.RECEIPT_ARE and "line 41:" in refused.rejection_message


def test_the_pipeline_takes_a_reading_done_on_arrival_only_for_that_very_file(
    node: RunningNode, declarant: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deposit of at most WHOLE_BYTES is scanned and read at once as it arrives; its reading
    # waits for the pipeline, which takes it instead of reading the file again, but only for
    # the deposit it was done for and the plaintext it was done on (its SHA-256).
    data = b"".join(generate(3, order=731))
    deposit = declarant.submit_deposit(_file(tmp_path, data))
    assert _settled(declarant, deposit.id).state == pb.DEPOSIT_STATE_ROUTED
    pipeline = node.node.pipeline
    record = node.node.deposits.get(deposit.id)
    assert record is not None
    _, other = scan_and_read_whole(b"".join(generate(5, order=732)), pipeline.router)
    assert other is not None

    def read() -> int:
        files: dict[str, ShareFile] = {}
        try:
            report, _, _ = pipeline._read(record, files, [])
        finally:
            for file in files.values():
                file.discard()
        return sum(declaration.individuals for declaration in report.declarations)

    pipeline.keep(record.id, record.sha256, record.size, other)
    assert read() == 5  # the reading kept for it, not its file
    assert read() == 3  # taken once: then its file
    pipeline.keep(record.id, hashlib.sha256(b"another plaintext").digest(), 1, other)
    assert read() == 3
    pipeline.keep("another-deposit", record.sha256, record.size, other)
    assert read() == 3
    # A node holds a bounded number of them: past it, one more is not kept (those kept earlier
    # are claimed first) and a deposit arriving is only scanned; its deposit is read again.
    # (The pipeline's rounds drop readings of deposits no node may claim, as these made-up
    # ones: not meanwhile.)
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "forget", lambda deposit_ids: None)
        number = 0
        while pipeline.room():
            assert pipeline.keep(f"an-earlier-deposit-{number}", record.sha256, 1, other)
            number += 1
        assert 0 < number <= KEPT_READINGS
        assert not pipeline.keep(record.id, record.sha256, record.size, other)
        assert read() == 3
    # Nor for longer than KEPT_SECONDS (which frees the room), nor more bytes than KEPT_BYTES.
    for bound in ("KEPT_SECONDS", "KEPT_BYTES"):
        with monkeypatch.context() as patched:
            patched.setattr(pipeline_module, bound, 0)
            pipeline.keep(record.id, record.sha256, record.size, other)
            assert read() == 3
    assert pipeline.room()
    pipeline.keep(record.id, record.sha256, record.size, other)
    assert read() == 5
    # A kept reading whose deposit is done already (routed by another node, or before its
    # reading was kept) does not hold its room until it expires.
    assert pipeline.keep(record.id, record.sha256, record.size, other)
    pipeline.process(record.id)  # ROUTED: nothing to do
    assert record.id not in pipeline._kept_ids()
