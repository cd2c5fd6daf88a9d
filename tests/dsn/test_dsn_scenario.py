"""Scenario files (registry/dsn/synth_scenario.py): each nature, in a lot or not, passes the
validator; the truth says what the file holds, read back block by block with the reader (not
the routing code); the same seed gives the same bytes; a large file streams."""

from __future__ import annotations

import inspect
import tracemalloc
from collections import defaultdict

import pytest

from registry.dsn.reader import BlockInstance, read_blocks
from registry.dsn.synth import DEMO_ORGANISM_IDS, money
from registry.dsn.synth_scenario import (
    AGIRC_ARRCO_SCHEMES,
    NATURES,
    Individual,
    Scenario,
    Truth,
    scenario_file,
)
from registry.dsn.validation import Report, validate
from tests.dsn.by_employee import Employee, read_by_employee

AGIRC_ARRCO_CODES = {"106", "109", "131", "132"}


def _blocking(report: Report) -> list[tuple[int, str, str]]:
    return [(a.line, a.rule, a.rubric) for a in report.anomalies if a.blocking]


@pytest.mark.parametrize("lot", [False, True], ids=["envoi", "lot"])
@pytest.mark.parametrize("nature", NATURES)
def test_each_nature_passes_the_validator(nature: str, lot: bool) -> None:
    scenario = scenario_file(nature, employees=9, seed=3, lot=lot)
    report = validate(scenario.lines())
    assert _blocking(report) == []
    assert report.warnings == 0
    assert report.envois == 1
    [declaration] = report.declarations
    assert declaration.nature == nature
    assert declaration.individuals == len(scenario.truth.indices)
    assert declaration.sirets == [scenario.truth.siret]


def _read(scenario: Scenario) -> tuple[dict[str, list[BlockInstance]], list[Employee]]:
    """The establishment-level blocks (by block id) and each individual's blocks."""
    return read_by_employee(scenario.lines())


def _values(instances: list[BlockInstance], *rubrics: str) -> list[tuple[str | None, ...]]:
    return [tuple(i.value(r) for r in rubrics) for i in instances]


def _children(parent: BlockInstance, instances: list[BlockInstance]) -> list[BlockInstance]:
    return [i for i in instances if i.parent is parent]


def _check_person(person: Employee, truth: Individual) -> None:
    blocks = person.blocks
    assert person.nir == truth.nir
    assert _values(blocks["S21.G00.40"], "S21.G00.40.009") == [(truth.contract,)]
    pension = [truth.pension] if truth.pension is not None else []
    assert [v for (v,) in _values(blocks["S21.G00.71"], "S21.G00.71.002")] == pension
    # Affiliations: their ids, their adhesion, their beneficiaries.
    affiliations = blocks["S21.G00.70"]
    assert _values(affiliations, "S21.G00.70.012", "S21.G00.70.013") == [
        (a.affiliation, a.adhesion) for a in truth.affiliations
    ]
    for instance, expected in zip(affiliations, truth.affiliations, strict=True):
        found = _children(instance, blocks["S21.G00.73"])
        assert _values(found, "S21.G00.73.003", "S21.G00.73.007") == [
            (b.kind, b.nir) for b in expected.beneficiaries
        ]
    # Bases, in order, with the affiliation they name, their components and contributions.
    bases = blocks["S21.G00.78"]
    assert _values(bases, "S21.G00.78.001", "S21.G00.78.005") == [
        (b.code, b.affiliation) for b in truth.bases
    ]
    for instance, base in zip(bases, truth.bases, strict=True):
        components = _children(instance, blocks["S21.G00.79"])
        assert _values(components, "S21.G00.79.001", "S21.G00.79.004") == [
            (kind, money(cents)) for kind, cents in base.components
        ]
        contributions = _children(instance, blocks["S21.G00.81"])
        assert _values(contributions, "S21.G00.81.001", "S21.G00.81.002", "S21.G00.81.004") == [
            (c.code, c.organism_id, money(c.amount)) for c in base.contributions
        ]
    # Events and other blocks.
    assert bool(blocks["S21.G00.60"]) == (truth.sick_leave is not None)
    assert bool(blocks["S21.G00.66"]) == bool(truth.sick_leave and truth.sick_leave.therapeutic)
    assert _values(blocks["S21.G00.62"], "S21.G00.62.001") == (
        [(truth.exit.date,)] if truth.exit is not None else []
    )
    assert bool(blocks["S21.G00.63"]) == bool(truth.exit and truth.exit.notice)
    assert [v for (v,) in _values(blocks["S21.G00.65"], "S21.G00.65.001")] == list(
        truth.suspensions
    )
    assert [v for (v,) in _values(blocks["S21.G00.86"], "S21.G00.86.001")] == list(truth.seniority)
    if truth.pas is None:
        assert not blocks["S21.G00.50"]
    else:
        assert _values(blocks["S21.G00.50"], "S21.G00.50.006", "S21.G00.50.009") == [
            (truth.pas.rate, money(truth.pas.amount))
        ]
        assert _values(blocks["S21.G00.56"], "S21.G00.56.007") == (
            [(money(truth.pas.regularisation),)] if truth.pas.regularisation is not None else []
        )


def _check_establishment(blocks: dict[str, list[BlockInstance]], truth: Truth) -> None:
    adhesions = blocks["S21.G00.15"]
    assert _values(adhesions, "S21.G00.15.005", "S21.G00.15.002", "S21.G00.15.001") == [
        (a.adhesion, a.oc_id, a.contract) for a in truth.adhesions
    ]
    for instance, adhesion in zip(adhesions, truth.adhesions, strict=True):
        changes = _children(instance, blocks["S21.G00.16"])
        assert _values(changes, "S21.G00.16.002") == (
            [(adhesion.former_oc_id,)] if adhesion.former_oc_id else []
        )
    payments = blocks["S21.G00.20"]
    assert _values(payments, "S21.G00.20.001", "S21.G00.20.005") == [
        (p.organism_id, money(p.amount)) for p in truth.payments
    ]
    for instance, payment in zip(payments, truth.payments, strict=True):
        components = _children(instance, blocks["S21.G00.55"])
        assert _values(components, "S21.G00.55.003", "S21.G00.55.001") == [
            (contract, money(cents)) for contract, cents in payment.components
        ]
    assert _values(blocks["S21.G00.22"], "S21.G00.22.001", "S21.G00.22.005") == [
        (s.organism_id, money(s.amount)) for s in truth.slips
    ]


@pytest.mark.parametrize("nature", NATURES)
def test_the_truth_is_what_the_file_declares(nature: str) -> None:
    scenario = scenario_file(nature, employees=30, seed=11)
    truth = scenario.truth
    establishment, people = _read(scenario)
    _check_establishment(establishment, truth)
    expected = list(truth.individuals())
    assert len(people) == len(expected)
    for person, individual in zip(people, expected, strict=True):
        _check_person(person, individual)


def test_the_monthly_file_holds_every_kind_of_employee_and_links_them_right() -> None:
    truth = scenario_file("01", employees=60, seed=5).truth
    people = list(truth.individuals())
    ocs = {tuple(sorted({a.oc for a in p.affiliations})) for p in people}
    assert {(), ("PREVOYANCE",), ("MUTUELLE",), ("MUTUELLE", "PREVOYANCE")} <= ocs
    assert {"RUAA", "RETA", "IRCANTEC", "90000"} <= {p.pension for p in people}
    assert sum(p.sick_leave is not None for p in people) == 1
    assert sum(p.exit is not None for p in people) == 1
    assert not any(p.exit.notice for p in people if p.exit is not None)
    assert any(p.suspensions for p in people)
    assert any(p.pas and p.pas.regularisation for p in people)
    assert any(b.nir for p in people for a in p.affiliations for b in a.beneficiaries)
    # The same affiliation id names different OCs for different employees.
    owners = {(a.affiliation, a.oc) for p in people for a in p.affiliations}
    assert {("1", "PREVOYANCE"), ("1", "MUTUELLE")} <= owners
    # Two adhesions of PREVOYANCE, one of MUTUELLE; every affiliation names one of them, and
    # each OC's base 31 names only that OC's affiliations of that employee.
    assert [(a.oc, a.adhesion) for a in truth.adhesions] == [
        ("PREVOYANCE", "1"), ("PREVOYANCE", "2"), ("MUTUELLE", "3"),
    ]  # fmt: skip
    known = {(a.oc, a.adhesion) for a in truth.adhesions}
    for person in people:
        assert {(a.oc, a.adhesion) for a in person.affiliations} <= known
        own = {a.affiliation: a.oc for a in person.affiliations}
        base31 = [b for b in person.bases if b.code == "31"]
        assert sorted(b.affiliation or "" for b in base31) == sorted(own)
        for base in base31:
            assert [(c.code, c.organism) for c in base.contributions] == [
                ("059", own[base.affiliation or ""])
            ]
            assert all(c.organism_id is None for c in base.contributions)
        codes = {c.code for b in person.bases for c in b.contributions}
        if person.pension in AGIRC_ARRCO_SCHEMES:
            assert "131" in codes
        else:
            assert not codes & AGIRC_ARRCO_CODES
        if person.pension == "IRCANTEC":
            assert "28" in {b.code for b in person.bases} and "060" in codes
        for base in person.bases:
            for c in base.contributions:
                assert (c.organism_id is None) == (c.organism != "URSSAF")
    # Payments add up what each organism collects.
    collected: dict[str, int] = defaultdict(int)
    for person in people:
        for base in person.bases:
            for c in base.contributions:
                collected[c.organism] += c.amount
        if person.pas is not None:
            collected["DGFIP"] += person.pas.amount + (person.pas.regularisation or 0)
    paid = {p.organism: p.amount for p in truth.payments}
    assert paid == {o: collected[o] for o in ("URSSAF", "DGFIP", "AGIRC-ARRCO", "PREVOYANCE",
                                              "MUTUELLE")}  # fmt: skip
    assert {p.organism_id for p in truth.payments} >= {"P0942", "P0961", "A0700", "DGFIP"}


def test_an_oc_the_establishment_does_not_adhere_to_has_nothing_in_the_file() -> None:
    scenario = scenario_file("01", employees=20, seed=2, ocs=("PREVOYANCE",))
    data = b"".join(scenario.lines())
    assert b"'" + DEMO_ORGANISM_IDS["MUTUELLE"].encode() + b"'" not in data
    assert scenario.truth.oc_share("MUTUELLE").empty
    share = scenario.truth.oc_share("PREVOYANCE")
    assert not share.empty and share.affiliations
    assert {a.oc for found in share.affiliations.values() for a in found} == {"PREVOYANCE"}
    assert _blocking(validate(iter(data.splitlines(keepends=True)))) == []


@pytest.mark.parametrize(
    ("nature", "present", "absent"),
    [
        ("04", {"S21.G00.60"}, {"S21.G00.62", "S21.G00.70", "S21.G00.50", "S21.G00.15"}),
        ("05", {"S21.G00.60", "S21.G00.66"}, {"S21.G00.62", "S21.G00.50"}),
        ("07", {"S21.G00.62", "S21.G00.63", "S21.G00.65", "S21.G00.70", "S21.G00.86",
                "S21.G00.15"}, {"S21.G00.50", "S21.G00.60", "S21.G00.20"}),
        ("08", {"S21.G00.70", "S21.G00.73", "S21.G00.86", "S21.G00.15"},
         {"S21.G00.50", "S21.G00.71", "S21.G00.20", "S21.G00.62"}),
    ],
)  # fmt: skip
def test_an_event_declares_one_employee_and_what_the_event_needs(
    nature: str, present: set[str], absent: set[str]
) -> None:
    scenario = scenario_file(nature, employees=50)
    blocks = {instance.block for instance in read_blocks(scenario.lines())}
    assert present <= blocks and not absent & blocks
    assert len(scenario.truth.indices) == 1


def test_the_declaration_header_says_the_nature_s_own_rubrics() -> None:
    def header(nature: str) -> dict[str, str]:
        instances = read_blocks(scenario_file(nature).lines())
        declaration = next(i for i in instances if i.block == "S20.G00.05")
        return {line.rubric: line.value for line in declaration.lines}

    assert header("08")["S20.G00.05.011"] == "01"
    assert header("09")["S20.G00.05.013"] == "01"
    assert "S20.G00.05.011" not in header("01") and "S20.G00.05.013" not in header("01")


def test_the_same_seed_gives_the_same_bytes() -> None:
    first = b"".join(scenario_file("01", employees=25, seed=4, lot=True).lines())
    again = b"".join(scenario_file("01", employees=25, seed=4, lot=True).lines())
    other = b"".join(scenario_file("01", employees=25, seed=5, lot=True).lines())
    assert first == again and first != other
    assert (
        scenario_file("01", employees=25, seed=4).truth
        == scenario_file("01", employees=25, seed=4).truth
    )


def test_a_large_file_streams() -> None:
    scenario = scenario_file("01", employees=2_000, seed=1)
    assert inspect.isgenerator(scenario.lines())
    tracemalloc.start()
    try:
        count = size = 0
        for line in scenario.lines():
            count += 1
            size += len(line)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 300_000
    # Far below the file itself: no list of its lines is ever built.
    assert peak < size // 20
