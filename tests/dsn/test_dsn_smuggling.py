"""One reading of each file (issue 18, point 1): a structure that two readers could read two ways
is refused, before anything is checked on it, whatever door the file comes through.

The attack these tests keep shut: a declarant entitled to company A deposits a file whose
company block says B, then (after a line no step placed alike) A. The deposit's scan used to
check rights on the last SIREN of the block, validation and routing used the first: the file
got an AEE and a CCO and was routed as B's declaration, the firm became B's recorded declarant
and read its employees."""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interops.dsn.v1 import dsn_pb2 as pb

from clients.client import Client
from registry.dsn.scan import DepositScan
from registry.dsn.synth import DEMO_COMPANY, company, generate
from registry.dsn.validation import validate
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.declarant_store import DeclarantStore
from tests.running_node import RunningNode

DEPOSIT = "interops.dsn.v1.DepositService"
OTHER = company(siret_of(siren_at(9), 1))
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
SIREN_LINE = f"S21.G00.06.001,'{DEMO_COMPANY.siren}'\r\n".encode()
NIC_LINE = f"S21.G00.11.001,'{DEMO_COMPANY.nic}'\r\n".encode()
OTHER_SIREN = f"S21.G00.06.001,'{OTHER.siren}'\r\n".encode()


def _file() -> bytes:
    return b"".join(generate(2))


def _before(line: bytes, *inserted: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data.replace(line, b"".join(inserted) + line, 1)


def _after(line: bytes, *inserted: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data.replace(line, line + b"".join(inserted), 1)


def _swap_establishment_before_company(data: bytes) -> bytes:
    lines = data.split(b"\r\n")
    company_at = next(i for i, line in enumerate(lines) if line.startswith(b"S21.G00.06."))
    establishment = [line for line in lines if line.startswith(b"S21.G00.11.")]
    rest = [line for line in lines if not line.startswith(b"S21.G00.11.")]
    return b"\r\n".join(rest[:company_at] + establishment + rest[company_at:])


def _contract_without_employee(data: bytes) -> bytes:
    return data.replace(b"S21.G00.15.001", b"S21.G00.40.001,'01012026'\r\nS21.G00.15.001", 1)


# Each shape, and what the deposit's scan answers: an ARE code.
SHAPES: dict[str, tuple[Callable[[bytes], bytes], str, str]] = {
    "unknown block between two SIRENs": (
        _before(SIREN_LINE, OTHER_SIREN, b"S10.G00.95.001,'x'\r\n"),
        "AMBIGUOUS_STRUCTURE", "NEODES-UNKNOWN-BLOCK",
    ),
    "unknown rubric between two SIRENs": (
        _before(SIREN_LINE, OTHER_SIREN, b"S21.G00.06.950,'x'\r\n"),
        "AMBIGUOUS_STRUCTURE", "NEODES-UNKNOWN-RUBRIC",
    ),
    "S00 line between two SIRENs": (
        _before(SIREN_LINE, OTHER_SIREN, b"S00.G00.00.001,'x'\r\n"),
        "AMBIGUOUS_STRUCTURE", "NEODES-UNKNOWN-BLOCK",
    ),
    "SIREN repeated in S21.G00.06": (
        _before(SIREN_LINE, OTHER_SIREN), "AMBIGUOUS_STRUCTURE", "NEODES-CARDINALITY",
    ),
    "NIC repeated in S21.G00.11": (
        _after(NIC_LINE, f"S21.G00.11.001,'{OTHER.nic}'\r\n".encode()),
        "AMBIGUOUS_STRUCTURE", "NEODES-CARDINALITY",
    ),
    "a rubric of another block inside the company block": (
        _after(SIREN_LINE, NIC_LINE), "AMBIGUOUS_STRUCTURE", "NEODES-CARDINALITY",
    ),
    "an establishment before its company": (
        _swap_establishment_before_company, "AMBIGUOUS_STRUCTURE", "NEODES-PARENT",
    ),
    "a contract under no employee": (
        _contract_without_employee, "AMBIGUOUS_STRUCTURE", "NEODES-PARENT",
    ),
}  # fmt: skip


def _scan(data: bytes, entitled: set[str]) -> tuple[str, list[str]]:
    scan = DepositScan()
    for start in range(0, len(data), 1000):  # as chunks arrive, lines cut anywhere
        scan.feed(data[start : start + 1000])
    refusal = scan.finish().refusal(
        len(data), entitled.__contains__, "dsn.deposit", lambda siret: siret == FIRM
    )
    return (refusal.code if refusal else "AEE"), scan.sirets


@pytest.mark.parametrize("shape", SHAPES)
def test_each_smuggling_shape_is_refused_by_the_scan_and_by_validation(shape: str) -> None:
    change, code, rule = SHAPES[shape]
    data = change(_file())
    answer, _ = _scan(data, {DEMO_COMPANY.siret})
    assert answer == code
    report = validate(io.BytesIO(data))
    assert not report.conformant and rule in {a.rule for a in report.anomalies if a.blocking}


def test_the_intact_file_is_taken_and_reads_one_establishment() -> None:
    assert _scan(_file(), {DEMO_COMPANY.siret}) == ("AEE", [DEMO_COMPANY.siret])
    assert validate(io.BytesIO(_file())).conformant


def test_an_emitter_other_than_the_depositor_is_refused_even_repeated() -> None:
    """The links a file reveals are recorded under its émetteur, whose holders then see the
    declared company's employees: a declarant may not name another firm there."""
    line = f"S10.G00.01.001,'{DEMO_COMPANY.emitter_siren}'\r\n".encode()
    other_emitter = f"S10.G00.01.001,'{OTHER.siren}'\r\n".encode()
    assert _scan(_file().replace(line, other_emitter), {DEMO_COMPANY.siret})[0] == (
        "EMITTER_NOT_YOURS"
    )
    data = _before(line, other_emitter)(_file())  # two émetteur blocks: the first is foreign
    assert _scan(data, {DEMO_COMPANY.siret})[0] == "EMITTER_NOT_YOURS"
    report = validate(io.BytesIO(data))
    assert "NEODES-CARDINALITY" in {a.rule for a in report.anomalies if a.blocking}


def test_a_sirets_split_across_chunks_reads_as_the_pipeline_reads_it() -> None:
    """The scan reads the bytes as they arrive, cut anywhere; its SIRETs are the reading's."""
    data = _file()
    for size in (1, 7, 4096):
        scan = DepositScan()
        for start in range(0, len(data), size):
            scan.feed(data[start : start + size])
        assert scan.finish().sirets == [DEMO_COMPANY.siret]


@pytest.fixture(scope="module")
def declarant(node: RunningNode) -> Iterator[Client]:
    """A declarant of the demo firm, entitled to deposit for the demo company only."""
    DeclarantStore(node.node.engine).create(
        FIRM, "Leroy", "Jade", "smuggler pw", [("dsn.deposit", DEMO_COMPANY.siren)]
    )
    chain = node.sign_in(FIRM, "Leroy", "Jade", "smuggler pw", audience=[DEPOSIT])
    with Client(node.address, credentials=chain, timeout=60) as client:
        yield client


@pytest.mark.parametrize("shape", [s for s in SHAPES if "SIREN" in s])
def test_a_declarant_cannot_deposit_for_another_company_by_smuggling_its_siren(
    node: RunningNode, declarant: Client, tmp_path: Path, shape: str
) -> None:
    change, code, _ = SHAPES[shape]
    path = tmp_path / "smuggled.dsn"
    path.write_bytes(change(_file()))
    deposit = declarant.submit_deposit(path)
    assert deposit.receipt == pb.RECEIPT_ARE and deposit.rejection_code == code
    assert deposit.state == pb.DEPOSIT_STATE_REJECTED and not deposit.deliveries
    assert node.node.relations.link(FIRM, OTHER.siret) is None


def test_a_declarant_cannot_name_another_firm_as_emitter(declarant: Client, tmp_path: Path) -> None:
    line = f"S10.G00.01.001,'{DEMO_COMPANY.emitter_siren}'\r\n".encode()
    path = tmp_path / "other-emitter.dsn"
    path.write_bytes(_file().replace(line, f"S10.G00.01.001,'{OTHER.siren}'\r\n".encode()))
    deposit = declarant.submit_deposit(path)
    assert deposit.receipt == pb.RECEIPT_ARE and deposit.rejection_code == "EMITTER_NOT_YOURS"


def test_a_month_to_come_is_refused_it_would_end_the_real_firms_link() -> None:
    """A DSN for a month to come would take the establishment over from the firm that declares
    it (registry/relations/store.py ends a link when another firm declares a later month)."""
    today = datetime.date.today()
    next_month = datetime.date(today.year + today.month // 12, today.month % 12 + 1, 1)
    for month in (next_month.strftime("01%m%Y"), "01012099"):
        future = b"".join(generate(3, month=month))
        assert _scan(future, {DEMO_COMPANY.siret})[0] == "PERIOD_IN_FUTURE"
    assert _scan(_file(), {DEMO_COMPANY.siret})[0] == "AEE"  # March 2026: a month begun
