"""Each organism exactly its share (issue 18, points 3 and 5): realistic files of every nature
(two OCs with distinct adhesions and affiliations, their bases and contributions, Agirc-Arrco and
IRCANTEC employees, the withholding tax, an exit, a sick leave), routed, and every share read
back and held against the generator's truth (registry/dsn/synth_scenario.py), never against the
routing rules: (a) nothing of an employee or an affiliation the organism is not entitled to
reaches it, (b) everything it is entitled to does, (c) an organism entitled to nothing gets no
share. The leaks and starvations found in real files are named where they are checked."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

import pytest

from registry.dsn.reader import BlockInstance
from registry.dsn.routing import Router, load_rules
from registry.dsn.synth import DEMO_ORGANISM_IDS
from registry.dsn.synth_scenario import NATURES, Individual, Truth, scenario_file
from tests.dsn.by_employee import Employee, read_by_employee

MONTHLY = {"01", "09"}
OCS = ("PREVOYANCE", "MUTUELLE")
AGIRC_ARRCO_CODES = {"106", "109", "131", "132"}
# What each organism may receive under one of its employees, whatever the nature.
UNDER_EMPLOYEE = {
    "URSSAF": {"S21.G00.30", "S21.G00.31", "S21.G00.40", "S21.G00.41", "S21.G00.50",
               "S21.G00.51", "S21.G00.52", "S21.G00.54", "S21.G00.62", "S21.G00.65",
               "S21.G00.78", "S21.G00.79", "S21.G00.81"},
    "DGFIP": {"S21.G00.30", "S21.G00.50", "S21.G00.56"},
    "AGIRC-ARRCO": {"S21.G00.30", "S21.G00.31", "S21.G00.40", "S21.G00.50", "S21.G00.51",
                    "S21.G00.52", "S21.G00.54", "S21.G00.60", "S21.G00.62", "S21.G00.63",
                    "S21.G00.65", "S21.G00.71", "S21.G00.72", "S21.G00.78", "S21.G00.79",
                    "S21.G00.81", "S21.G00.86"},
    "CNAM": {"S21.G00.30", "S21.G00.31", "S21.G00.40", "S21.G00.50", "S21.G00.51",
             "S21.G00.60", "S21.G00.65", "S21.G00.66"},
    "FRANCE-TRAVAIL": {"S21.G00.30", "S21.G00.31", "S21.G00.40", "S21.G00.50", "S21.G00.51",
                       "S21.G00.52", "S21.G00.54", "S21.G00.60", "S21.G00.62", "S21.G00.63",
                       "S21.G00.65", "S21.G00.78", "S21.G00.79", "S21.G00.86"},
    **{oc: {"S21.G00.30", "S21.G00.31", "S21.G00.40", "S21.G00.50", "S21.G00.60", "S21.G00.62",
            "S21.G00.70", "S21.G00.73", "S21.G00.78", "S21.G00.79", "S21.G00.81"}
       for oc in OCS},
}  # fmt: skip


@dataclass
class _Share:
    raw: bytes
    top: dict[str, list[BlockInstance]]
    people: dict[str, Employee]


def _read(raw: bytes) -> _Share:
    top, employees = read_by_employee(io.BytesIO(raw))
    return _Share(raw, top, {employee.nir: employee for employee in employees})


def _route(truth_lines: bytes) -> dict[str, _Share]:
    outputs: dict[str, io.BytesIO] = {}
    shares = Router(load_rules().values()).route(
        io.BytesIO(truth_lines), lambda o: outputs.setdefault(o, io.BytesIO())
    )
    return {s.organism: _read(outputs[s.organism].getvalue()) for s in shares}


def _employees(organism: str, truth: Truth) -> set[str]:
    """Whose data the organism is entitled to, from the truth alone."""
    people, nature = list(truth.individuals()), truth.nature
    if organism == "URSSAF":
        return {p.nir for p in people} if nature in MONTHLY else set()
    if organism == "CNAM":
        return {p.nir for p in people} if nature in {"01", "04", "05", "09"} else set()
    if organism == "FRANCE-TRAVAIL":
        return {p.nir for p in people} if nature in {"01", "07", "09"} else set()
    if organism == "DGFIP":
        return {p.nir for p in people if p.pas} if nature in MONTHLY else set()
    if organism == "AGIRC-ARRCO":
        return {p.nir for p in people if p.agirc_arrco} if nature in {"01", "07", "09"} else set()
    return {p.nir for p in people if p.affiliation_ids(organism)}


def _concerned(truth: Truth) -> set[str]:
    found = {organism for organism in UNDER_EMPLOYEE if _employees(organism, truth)}
    found |= {p.organism for p in truth.payments}
    return found | {oc for oc in OCS if not truth.oc_share(oc).empty}


CASES = [(nature, False) for nature in NATURES] + [("01", True), ("07", True)]


@pytest.fixture(
    scope="module", params=CASES, ids=[f"{n}{'-lot' if lot else ''}" for n, lot in CASES]
)
def routed(request: pytest.FixtureRequest) -> tuple[Truth, dict[str, _Share]]:
    nature, lot = request.param
    scenario = scenario_file(nature, employees=14, seed=5, lot=lot)
    return scenario.truth, _route(b"".join(scenario.lines()))


def test_c_exactly_the_organisms_entitled_to_something_get_a_share(
    routed: tuple[Truth, dict[str, _Share]],
) -> None:
    """No empty shares: a lot envelope around an end of contract used to give Agirc-Arrco and
    France Travail 0-byte shares recorded as deliveries; CNAM never got the monthly DSN."""
    truth, shares = routed
    assert set(shares) == _concerned(truth)
    assert all(share.people or share.top for share in shares.values())
    if truth.nature in MONTHLY:
        assert "CNAM" in shares and "FRANCE-TRAVAIL" in shares  # every month, not only exits


def test_a_each_organism_gets_only_its_employees_and_their_blocks(
    routed: tuple[Truth, dict[str, _Share]],
) -> None:
    truth, shares = routed
    everyone = {p.nir: p for p in truth.individuals()}
    for organism, share in shares.items():
        entitled = _employees(organism, truth)
        assert set(share.people) == entitled, organism
        for nir, person in everyone.items():  # not even an identifier of the others
            if nir not in entitled:
                assert nir.encode() not in share.raw, (organism, nir)
                for affiliation in person.affiliations:  # nor their beneficiaries
                    for beneficiary in affiliation.beneficiaries:
                        assert not beneficiary.nir or beneficiary.nir.encode() not in share.raw
        for got in share.people.values():
            assert set(got.blocks) <= UNDER_EMPLOYEE[organism], (organism, set(got.blocks))
        # Payments and slips: its own only.
        for payment in share.top["S21.G00.20"]:
            assert payment.value("S21.G00.20.001") == DEMO_ORGANISM_IDS[organism]
        assert not share.top["S21.G00.22"] or organism == "URSSAF"


def _affiliations(person: Individual, oc: str) -> set[str]:
    return set(person.affiliation_ids(oc))


def test_ocs_get_their_affiliates_affiliations_bases_and_contributions_and_nobody_else_s(
    routed: tuple[Truth, dict[str, _Share]],
) -> None:
    """Each OC used to receive every employee's S21.G00.30 and every S21.G00.70, the other OC's
    affiliations and beneficiaries included, and no bases, S21.G00.79, S21.G00.81, payments
    (S21.G00.55), exits or events."""
    truth, shares = routed
    for oc in OCS:
        expected = truth.oc_share(oc)
        if expected.empty:
            assert oc not in shares
            continue
        share = shares[oc]
        adhesions = {a.value("S21.G00.15.005") for a in share.top["S21.G00.15"]}
        assert adhesions == {a.adhesion for a in expected.adhesions}
        assert {a.value("S21.G00.15.002") for a in share.top["S21.G00.15"]} == {
            DEMO_ORGANISM_IDS[oc]
        }
        components = Counter(c.value("S21.G00.55.003") for c in share.top["S21.G00.55"])
        assert components == Counter(c for p in expected.payments for c, _ in p.components)
        for person in truth.individuals():
            ids = _affiliations(person, oc)
            if not ids:
                continue
            got = share.people[person.nir]
            assert set(got.values("S21.G00.70.012")) == ids
            beneficiaries = sum(len(a.beneficiaries) for a in person.affiliations if a.oc == oc)
            assert len(got.blocks["S21.G00.73"]) == beneficiaries
            bases = [b for b in person.bases if b.affiliation in ids and b.code == "31"]
            assert sorted(got.values("S21.G00.78.005")) == sorted(
                b.affiliation or "" for b in bases
            )
            assert set(got.values("S21.G00.78.001")) <= {"31"}
            assert len(got.blocks["S21.G00.79"]) == sum(len(b.components) for b in bases)
            assert sorted(got.values("S21.G00.81.001")) == sorted(
                c.code for b in bases for c in b.contributions
            )
            if person.exit is not None:
                assert got.blocks["S21.G00.62"]
            if person.sick_leave is not None:
                assert got.blocks["S21.G00.60"]


def test_agirc_arrco_gets_its_scheme_s_employees_bases_and_contributions_by_code(
    routed: tuple[Truth, dict[str, _Share]],
) -> None:
    """Real files give Agirc-Arrco's contributions (131, 132, 106, 109) without S21.G00.81.002:
    it used to receive none of them and no base; and it used to receive an IRCANTEC employee's
    identity, contract and remunerations."""
    truth, shares = routed
    share = shares.get("AGIRC-ARRCO")
    for person in truth.individuals():
        if share is None or not person.agirc_arrco:
            continue
        got = share.people[person.nir]
        assert set(got.values("S21.G00.71.002")) == {person.pension}
        expected = [c.code for b in person.bases for c in b.contributions
                    if c.organism == "AGIRC-ARRCO"]  # fmt: skip
        assert sorted(got.values("S21.G00.81.001")) == sorted(expected)
        assert set(got.values("S21.G00.81.001")) <= AGIRC_ARRCO_CODES
        assert "28" not in got.values("S21.G00.78.001") and "31" not in got.values("S21.G00.78.001")
        if truth.nature in MONTHLY:
            assert expected, "a monthly DSN carries Agirc-Arrco contributions"


def test_urssaf_gets_its_contributions_and_bases_not_the_ocs_nor_the_tax(
    routed: tuple[Truth, dict[str, _Share]],
) -> None:
    """Urssaf used to receive the OCs' bases (type 31)."""
    truth, shares = routed
    share = shares.get("URSSAF")
    if share is None:
        assert truth.nature not in MONTHLY
        return
    assert len(share.top["S21.G00.23"]) == sum(len(s.lines) for s in truth.slips)
    for person in truth.individuals():
        got = share.people[person.nir]
        expected = [c.code for b in person.bases for c in b.contributions
                    if c.organism == "URSSAF"]  # fmt: skip
        assert sorted(got.values("S21.G00.81.001")) == sorted(expected)
        assert not {"28", "31"} & set(got.values("S21.G00.78.001"))
        assert not got.values("S21.G00.50.006") and not got.values("S21.G00.50.009")


def test_dgfip_gets_the_withholding_tax_and_its_regularisations(
    routed: tuple[Truth, dict[str, _Share]],
) -> None:
    truth, shares = routed
    share = shares.get("DGFIP")
    for person in truth.individuals():
        if share is None or person.pas is None:
            continue
        got = share.people[person.nir]
        assert got.values("S21.G00.50.006") == [person.pas.rate]
        assert bool(got.blocks["S21.G00.56"]) == (person.pas.regularisation is not None)


def test_france_travail_and_cnam_get_exits_notices_leaves_suspensions_and_seniority(
    routed: tuple[Truth, dict[str, _Share]],
) -> None:
    """France Travail used to get the monthly DSN only in months with an exit, and its
    end-of-contract share lacked S21.G00.60/65/86, which then went to nobody."""
    truth, shares = routed
    for organism in ("FRANCE-TRAVAIL", "CNAM"):
        share = shares.get(organism)
        for person in truth.individuals():
            if share is None or person.nir not in share.people:
                continue
            got = share.people[person.nir]
            assert len(got.blocks["S21.G00.65"]) == len(person.suspensions)
            assert bool(got.blocks["S21.G00.60"]) == (person.sick_leave is not None)
            if organism == "FRANCE-TRAVAIL":
                assert bool(got.blocks["S21.G00.62"]) == (person.exit is not None)
                assert bool(got.blocks["S21.G00.63"]) == bool(person.exit and person.exit.notice)
                assert len(got.blocks["S21.G00.86"]) == len(person.seniority)
            else:
                therapeutic = bool(person.sick_leave and person.sick_leave.therapeutic)
                assert bool(got.blocks["S21.G00.66"]) == therapeutic


def test_every_share_is_a_file_the_reader_reads_whole_with_its_totals() -> None:
    scenario = scenario_file("01", employees=6, seed=2, lot=True)
    for organism, share in _route(b"".join(scenario.lines())).items():
        envois = share.top["S10.G00.00"]
        totals = share.top["S90.G00.90"]
        assert len(envois) == len(totals) == 1, organism  # a lot envelope is never passed on
        assert not any(block.startswith(("S05", "S06", "S95", "S96")) for block in share.top)
        lines = share.raw.count(b"\n")
        assert totals[0].value("S90.G00.90.001") == str(lines)
