"""Scenario DSN files: a realistic declaration of any nature, and the ground truth of who each
of its blocks belongs to, so a test can check each organism's share without the routing code.

A monthly file (nature 01, or 09 for a substitution) pays the Urssaf, the DGFiP (withholding
tax), Agirc-Arrco and two complementary organisms (OCs) with distinct adhesions: PREVOYANCE
(two contracts) and MUTUELLE (one contract, whose recipient changed: S21.G00.16). Its employees
mix Agirc-Arrco ('RUAA', 'RETA'), IRCANTEC and no complementary pension ('90000'); some are
affiliated to one OC, some to both, some to none; one is on sick leave (S21.G00.60 with a
therapeutic part-time S21.G00.66), one leaves (S21.G00.62, no notice), one has another
suspension (S21.G00.65), some have a withholding-tax regularisation (S21.G00.56). Affiliation
technical ids (S21.G00.70.012, referenced by S21.G00.78.005) are numbered per employee, so the
same id means different OCs for different employees. Agirc-Arrco's contributions (131, 132,
106, 109) carry no S21.G00.81.002, as in real files; the Urssaf's do.

An event file (04 sick leave, 05 return to work, 07 end of contract with its notice, 08
amorçage of an OC's variable data) declares one employee.

The truth is computed from (seed, employee index) alone: `Scenario.lines()` writes each
employee from the same record the truth returns, and neither keeps more than one employee, so
100,000-employee files stream. Building a Scenario reads every employee's record once (without
writing lines) for the establishment's payment totals and the adhesions in use.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from registry.dsn.synth import (
    DEMO_COMPANY,
    DEMO_ORGANISM_IDS,
    URSSAF_SIRET,
    Company,
    LineWriter,
    contract,
    contract_number,
    envoi_header,
    identity,
    money,
    month_period,
    nir,
)

NATURES = ("01", "04", "05", "07", "08", "09")
OCS = ("PREVOYANCE", "MUTUELLE")
AGIRC_ARRCO_SCHEMES = frozenset({"RUAA", "RETA", "RETC"})
# The declared company's account (a valid French IBAN and its BIC), for subrogation.
EMPLOYER_IBAN = "FR7630006000011234567890189"
EMPLOYER_BIC = "AGRIFRPP"
# Monthly social security ceiling and the minimum wage used by the general reduction, in cents.
_CEILING = 400_500
_SMIC = 180_180
_LOT_GROUPS = ("DSNOK", "FP-KO", "CT-KO", "AUTRE")
_LAST_NAMES = ("GARNIER", "FAURE", "ROUSSEL", "BLANC", "GUERIN", "MULLER", "HENRY", "ROUSSEAU")
_CHILD_NAMES = ("NINA", "TOM", "ZOE", "ENZO", "LEA", "NOAH")


@dataclass(frozen=True)
class Adhesion:
    """An establishment's adhesion to an OC contract: one S21.G00.15 block."""

    oc: str  # the organism: "PREVOYANCE" or "MUTUELLE"
    oc_id: str  # S21.G00.15.002
    adhesion: str  # S21.G00.15.005, referenced by S21.G00.70.013
    contract: str  # S21.G00.15.001, referenced by S21.G00.55.003
    former_oc_id: str | None = None  # S21.G00.16.002 when an S21.G00.16 block follows


_ADHESIONS = (
    Adhesion("PREVOYANCE", DEMO_ORGANISM_IDS["PREVOYANCE"], "1", "PREV-2024-001"),
    Adhesion("PREVOYANCE", DEMO_ORGANISM_IDS["PREVOYANCE"], "2", "PREV-CADRES-07"),
    Adhesion("MUTUELLE", DEMO_ORGANISM_IDS["MUTUELLE"], "3", "SANTE-2025-A", "P0917"),
)


@dataclass(frozen=True)
class Beneficiary:
    """An S21.G00.73 block under an affiliation."""

    kind: str  # S21.G00.73.003: 01 adult, 02 child
    last_name: str  # .006
    first_name: str  # .009
    birth: str  # .005
    nir: str | None  # .007 (adults only)


@dataclass(frozen=True)
class Affiliation:
    """An S21.G00.70 block: the employee's affiliation to one OC adhesion."""

    oc: str
    oc_id: str
    adhesion: str  # S21.G00.70.013 = S21.G00.15.005
    affiliation: str  # S21.G00.70.012 = S21.G00.78.005 of its base 31
    option: str  # .004
    population: str  # .005
    beneficiaries: tuple[Beneficiary, ...]
    contribution: int  # cents of the 059 contribution under its base 31 (monthly natures)


@dataclass(frozen=True)
class Contribution:
    """An S21.G00.81 block and the organism that collects it."""

    code: str  # .001
    organism: str  # URSSAF, AGIRC-ARRCO, IRCANTEC, PREVOYANCE, MUTUELLE
    organism_id: str | None  # .002 as written; None when the file has none
    base_amount: int | None  # .003, cents
    amount: int  # .004, cents (negative for reductions)


@dataclass(frozen=True)
class Base:
    """An S21.G00.78 block with its components (S21.G00.79) and contributions (S21.G00.81)."""

    code: str  # .001: 02, 03, 04, 07 (Urssaf, Agirc-Arrco), 28 (IRCANTEC), 31 (an OC)
    start: str
    end: str
    amount: int  # .004, cents (0 for base 31)
    affiliation: str | None  # .005: the affiliation id (base 31 only)
    components: tuple[tuple[str, int], ...]  # (S21.G00.79.001, S21.G00.79.004 in cents)
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True)
class Pas:
    """Withholding tax of S21.G00.50, and whether an S21.G00.56 regularisation follows."""

    rate: str  # S21.G00.50.006
    amount: int  # S21.G00.50.009, cents
    regularisation: int | None  # S21.G00.56.007, cents, when there is an S21.G00.56


@dataclass(frozen=True)
class Exit:
    """An S21.G00.62 end of contract."""

    date: str  # .001
    reason: str  # .002
    notice: bool  # an S21.G00.63 follows (nature 07 only)


@dataclass(frozen=True)
class SickLeave:
    """An S21.G00.60 sick leave."""

    last_day: str  # .002
    expected_end: str | None  # .003
    return_date: str | None  # .010
    therapeutic: bool  # an S21.G00.66 therapeutic part-time follows


@dataclass(frozen=True)
class Individual:
    """One S21.G00.30 employee, as the file declares it."""

    index: int
    nir: str  # S21.G00.30.001
    contract: str  # S21.G00.40.009
    category: str  # S21.G00.40.003
    pension: str | None  # S21.G00.71.002 (None when the nature declares no S21.G00.71)
    affiliations: tuple[Affiliation, ...]  # S21.G00.70 blocks, in file order
    sick_leave: SickLeave | None
    exit: Exit | None
    suspensions: tuple[str, ...]  # S21.G00.65.001 of each S21.G00.65
    pas: Pas | None  # None when there is no S21.G00.50
    bases: tuple[Base, ...]  # S21.G00.78 blocks, in file order
    seniority: tuple[str, ...]  # S21.G00.86.001 of each S21.G00.86

    def affiliation_ids(self, oc: str) -> frozenset[str]:
        """The S21.G00.70.012 ids of this employee's affiliations to that OC."""
        return frozenset(a.affiliation for a in self.affiliations if a.oc == oc)

    @property
    def agirc_arrco(self) -> bool:
        """True when the employee's complementary pension is Agirc-Arrco's."""
        return self.pension in AGIRC_ARRCO_SCHEMES


@dataclass(frozen=True)
class Payment:
    """An S21.G00.20 payment, with its S21.G00.55 components (OCs only)."""

    organism: str
    organism_id: str  # S21.G00.20.001
    amount: int  # .005, cents
    components: tuple[tuple[str, int], ...] = ()  # (S21.G00.55.003 contract, .001 cents)


@dataclass(frozen=True)
class Slip:
    """An S21.G00.22 Urssaf contribution slip with its S21.G00.23 lines."""

    organism_id: str  # S21.G00.22.001
    amount: int  # .005, cents
    lines: tuple[tuple[str, int, int], ...]  # (S21.G00.23.001, .004 cents, .005 cents)


@dataclass(frozen=True)
class OcShare:
    """What an OC is entitled to in the file: its adhesions and payments, and for each employee
    affiliated to one of its adhesions (by NIR), those affiliations (their S21.G00.73
    beneficiaries and their base 31 with its components and contributions come with them)."""

    oc: str
    adhesions: tuple[Adhesion, ...]
    payments: tuple[Payment, ...]
    affiliations: dict[str, tuple[Affiliation, ...]]

    @property
    def empty(self) -> bool:
        """True when the file holds nothing for this OC."""
        return not (self.adhesions or self.payments or self.affiliations)


@dataclass(frozen=True)
class Truth:
    """What the file declares and whose it is."""

    nature: str
    type: str  # S20.G00.05.002
    month: str  # S20.G00.05.005
    siret: str  # the declared establishment
    lot: bool
    seed: int
    ocs: tuple[str, ...]  # the OCs the establishment adheres to
    indices: range  # the employees' indices, in file order
    adhesions: tuple[Adhesion, ...]  # S21.G00.15 blocks, in file order
    payments: tuple[Payment, ...]  # S21.G00.20 blocks, in file order
    slips: tuple[Slip, ...]  # S21.G00.22 blocks
    headcount: int  # S21.G00.06.009 and S21.G00.11.008

    def individual(self, index: int) -> Individual:
        """The employee of that index as the file declares it."""
        return _individual(self.seed, index, self.nature, self.month, self.ocs)

    def individuals(self) -> Iterator[Individual]:
        """Every employee of the file, in file order (computed, never stored)."""
        return (self.individual(index) for index in self.indices)

    def oc_share(self, oc: str) -> OcShare:
        """What the OC is entitled to (holds every affiliated employee: for test-sized files)."""
        affiliations = {
            person.nir: tuple(a for a in person.affiliations if a.oc == oc)
            for person in self.individuals()
            if person.affiliation_ids(oc)
        }
        return OcShare(
            oc,
            tuple(a for a in self.adhesions if a.oc == oc),
            tuple(p for p in self.payments if p.organism == oc),
            affiliations,
        )


@dataclass(frozen=True)
class Scenario:
    """A scenario file: its lines, streamed, and its truth."""

    truth: Truth
    declared: Company
    order: int

    def lines(self) -> Iterator[bytes]:
        """The file's lines (bytes, ISO-8859-1, CRLF), one employee at a time."""
        envoi = _envoi(self.truth, self.declared, self.order)
        if not self.truth.lot:
            yield from envoi
            return
        yield from _lot(envoi, self.truth.month)


def scenario_file(
    nature: str,
    *,
    employees: int = 12,
    seed: int = 0,
    declared: Company = DEMO_COMPANY,
    month: str = "01032026",
    lot: bool = False,
    ocs: tuple[str, ...] = OCS,
    order: int = 1,
) -> Scenario:
    """A declaration of that nature and its truth.

    Monthly natures (01, 09) declare `employees` employees (from 5 on, each kind of employee
    is there: see the module's docstring); events declare one. `ocs` are the OCs the
    establishment adheres to (drop one to have an OC with nothing to receive); `lot` wraps the
    envoi in a lot envelope (S05/S06/S96/S95)."""
    if nature not in NATURES:
        raise ValueError(f"nature {nature!r} is not one of {', '.join(NATURES)}")
    if employees < 1:
        raise ValueError("a scenario declares at least one employee")
    unknown = set(ocs) - set(OCS)
    if unknown:
        raise ValueError(f"unknown OCs {sorted(unknown)}; known: {', '.join(OCS)}")
    indices = (
        range(employees)
        if nature in ("01", "09")
        else range(_EVENT_INDEX[nature], 1 + _EVENT_INDEX[nature])
    )
    adhesions_used: set[str] = set()
    totals: dict[str, int] = {}
    components: dict[str, int] = {}
    slip: dict[str, tuple[int, int]] = {}
    for index in indices:
        person = _individual(seed, index, nature, month, ocs)
        adhesions_used.update(a.adhesion for a in person.affiliations)
        if person.pas is not None:
            tax = person.pas.amount + (person.pas.regularisation or 0)
            totals["DGFIP"] = totals.get("DGFIP", 0) + tax
        for base in person.bases:
            for c in base.contributions:
                totals[c.organism] = totals.get(c.organism, 0) + c.amount
            _add_to_slip(slip, base)
        for a in person.affiliations:
            components[a.adhesion] = components.get(a.adhesion, 0) + a.contribution
    adhesions = tuple(a for a in _ADHESIONS if a.adhesion in adhesions_used)
    monthly = nature in ("01", "09")
    payments: list[Payment] = []
    slips: tuple[Slip, ...] = ()
    if monthly:
        for organism in ("URSSAF", "DGFIP", "AGIRC-ARRCO", *OCS):
            if organism not in totals:
                continue
            parts = tuple((a.contract, components[a.adhesion])
                          for a in adhesions if a.oc == organism)  # fmt: skip
            payments.append(Payment(organism, DEMO_ORGANISM_IDS[organism], totals[organism], parts))
        lines = tuple((ctp, assiette, amount) for ctp, (assiette, amount) in sorted(slip.items()))
        slips = (Slip(URSSAF_SIRET, sum(line[2] for line in lines), lines),)
    truth = Truth(
        nature, "01", month, declared.siret, lot, seed, tuple(ocs), indices, adhesions,
        tuple(payments), slips, employees,
    )  # fmt: skip
    return Scenario(truth, declared, order)


def _add_to_slip(slip: dict[str, tuple[int, int]], base: Base) -> None:
    """Adds a base's Urssaf contributions to the slip's aggregated lines (by CTP code)."""
    ctp = _CTP.get(base.code)
    if ctp is None:
        return
    assiette, amount = slip.get(ctp, (0, 0))
    urssaf = sum(c.amount for c in base.contributions if c.organism == "URSSAF")
    slip[ctp] = (assiette + (base.amount if base.code != "02" else 0), amount + urssaf)


# The employee an event declares: 0 has the sick leave and both OCs, 2 the end of contract.
_EVENT_INDEX = {"04": 0, "05": 0, "07": 2, "08": 0}
# The Urssaf slip's aggregated contribution code (CTP) for each Urssaf base.
_CTP = {"02": "100", "03": "100", "04": "260", "07": "772"}
# For each Urssaf base, (contribution code, rate in ten-thousandths) that every employee pays.
_URSSAF_RATES = {
    "02": (("076", 1545),),
    "03": (("045", 120), ("068", 30), ("074", 525), ("075", 700), ("076", 242), ("100", 16)),
    "04": (("072", 680), ("079", 50)),
    "07": (("040", 405), ("048", 25)),
}


@dataclass(frozen=True)
class _Profile:
    pension: str
    category: str
    gross: int  # cents
    ocs: tuple[tuple[str, int], ...]  # (OC, number of beneficiaries), in file order
    rate: int  # PAS rate, hundredths of a percent
    regularisation: bool
    overtime: int  # cents of exempted overtime (109), 0 when none
    family: str  # the beneficiaries' last name


def _profile(seed: int, index: int, ocs: tuple[str, ...]) -> _Profile:
    """The employee's draw: fixed for the first five (every kind is in a small file), random
    (but fixed by seed and index) after."""
    rng = random.Random(seed * 1_000_003 + index)
    gross = 180_000 + rng.randrange(0, 560_000)
    rate = rng.randrange(0, 1_800)
    fixed: dict[int, tuple[str, str, tuple[tuple[str, int], ...], bool]] = {
        0: ("RUAA", "04", (("MUTUELLE", 3), ("PREVOYANCE", 0)), True),
        1: ("IRCANTEC", "98", (("MUTUELLE", 1),), False),
        2: ("RETC", "01", (("PREVOYANCE", 1),), False),
        3: ("RUAA", "04", (), False),
        4: ("90000", "99", (("PREVOYANCE", 0), ("MUTUELLE", 2)), True),
    }
    if index in fixed:
        pension, category, affiliated, regularisation = fixed[index]
    else:
        pension = rng.choices(("RUAA", "RETA", "IRCANTEC", "90000"), (70, 10, 15, 5))[0]
        # A cadre's complementary pension is never the non-cadre's RETA (S21.G00.40.003/CCH-16).
        category = {"IRCANTEC": "98", "90000": "99", "RETA": "04"}.get(pension) or rng.choice(
            ("01", "04")
        )
        chosen = rng.choice(((), ("PREVOYANCE",), ("MUTUELLE",), OCS, OCS[::-1]))
        affiliated = tuple((oc, rng.randrange(0, 4) if oc == "MUTUELLE" else 0) for oc in chosen)
        regularisation = rng.random() < 0.1
    overtime = (
        12_000 + index % 7 * 1_000 if pension in AGIRC_ARRCO_SCHEMES and index % 5 == 1 else 0
    )
    kept = tuple((oc, count) for oc, count in affiliated if oc in ocs)
    family = _LAST_NAMES[(index + seed) % len(_LAST_NAMES)]
    return _Profile(pension, category, gross, kept, rate, regularisation, overtime, family)


def _day(month: str, day: int) -> str:
    return f"{day:02d}{month[2:]}"


def _individual(seed: int, index: int, nature: str, month: str, ocs: tuple[str, ...]) -> Individual:
    """The employee as a file of that nature declares them."""
    p = _profile(seed, index, ocs)
    start, end = month_period(month)
    monthly = nature in ("01", "09")
    sick = exit_ = None
    suspensions: tuple[str, ...] = ()
    if (monthly and index == 0) or nature in ("04", "05"):
        sick = SickLeave(_day(month, 9), None if nature == "05" else _day(month, 20),
                         _day(month, 21) if nature == "05" else None,
                         nature in ("01", "09", "05"))  # fmt: skip
    if (monthly and index == 2) or nature == "07":
        exit_ = Exit(_day(month, 15), "059", nature == "07")
    if (monthly and index == 3) or nature == "07":
        suspensions = ("501",)
    period_end = exit_.date if exit_ is not None else end
    affiliations: tuple[Affiliation, ...] = ()
    if nature in ("01", "09", "07", "08"):
        affiliations = tuple(
            _affiliation(index, position, affiliated, p, month)
            for position, affiliated in enumerate(p.ocs, start=1)
        )
    pension = None if nature == "08" else p.pension
    pas = bases = None
    if monthly:
        net = p.gross * 78 // 100
        regularisation = 5_000 * p.rate // 10_000 if p.regularisation else None
        pas = Pas(f"{p.rate // 100}.{p.rate % 100:02d}", net * p.rate // 10_000, regularisation)
        bases = _bases(p, affiliations, start, period_end)
    seniority = ("07", "02") if nature in ("01", "09", "07", "08") else ()
    return Individual(
        index, nir(index), contract_number(index), p.category, pension, affiliations, sick, exit_,
        suspensions, pas, bases or (), seniority,
    )  # fmt: skip


def _affiliation(
    index: int, position: int, affiliated: tuple[str, int], p: _Profile, month: str
) -> Affiliation:
    oc, beneficiaries = affiliated
    if oc == "PREVOYANCE":
        adhesion = _ADHESIONS[1] if p.category == "01" else _ADHESIONS[0]
        option, population = "INCAP-INVAL", "CADRES" if p.category == "01" else "NONCADRES"
        contribution = p.gross * 150 // 10_000
    else:
        adhesion = _ADHESIONS[2]
        option, population = ("FAMILLE" if beneficiaries else "ISOLE"), "ENSEMBLE"
        contribution = 4_500 + 3_000 * beneficiaries
    year = int(month[4:])
    spouse = nir(997_999 - index)  # another person's NIR than any employee's below 499,000
    people = tuple(
        Beneficiary("01", p.family, "SACHA", f"15{spouse[3:5]}19{spouse[1:3]}", spouse)
        if n == 0 else
        Beneficiary("02", p.family,
                    _CHILD_NAMES[(index + n) % len(_CHILD_NAMES)], f"0{n}0{n}{year - 3 * n}", None)
        for n in range(beneficiaries)
    )  # fmt: skip
    return Affiliation(oc, adhesion.oc_id, adhesion.adhesion, str(position), option, population,
                       people, contribution)  # fmt: skip


def _contribution(code: str, organism: str, assiette: int, rate: int) -> Contribution:
    organism_id = URSSAF_SIRET if organism == "URSSAF" else None
    return Contribution(code, organism, organism_id, assiette, assiette * rate // 10_000)


def _bases(
    p: _Profile, affiliations: tuple[Affiliation, ...], start: str, end: str
) -> tuple[Base, ...]:
    gross, t1 = p.gross, min(p.gross, _CEILING)
    agirc = p.pension in AGIRC_ARRCO_SCHEMES
    low = gross < _SMIC * 16 // 10
    amounts = {"02": t1, "03": gross, "04": gross * 9825 // 10_000, "07": min(gross, 4 * _CEILING)}
    bases = []
    for code, rates in _URSSAF_RATES.items():
        found = [_contribution(c, "URSSAF", amounts[code], rate) for c, rate in rates]
        components: tuple[tuple[str, int], ...] = ()
        if code == "02" and agirc:
            found.append(_contribution("131", "AGIRC-ARRCO", t1, 787))
        if code == "03":
            if low:
                components = (("01", _SMIC),)
                reduction = -(gross * 300 // 10_000)
                found.append(Contribution("018", "URSSAF", URSSAF_SIRET, gross, reduction))
                if agirc:
                    found.append(Contribution("106", "AGIRC-ARRCO", None, gross, reduction // 5))
            if agirc and gross > _CEILING:
                found.append(_contribution("131", "AGIRC-ARRCO", gross - _CEILING, 2159))
            if agirc and p.category == "01":
                found.append(_contribution("132", "AGIRC-ARRCO", min(gross, 4 * _CEILING), 6))
            if p.overtime:
                found.append(Contribution("109", "AGIRC-ARRCO", None, p.overtime,
                                          -(p.overtime * 401 // 10_000)))  # fmt: skip
        found.sort(key=lambda c: c.code)
        bases.append(Base(code, start, end, amounts[code], None, components, tuple(found)))
    if p.pension == "IRCANTEC":
        found = [_contribution("060", "IRCANTEC", t1, 700)]
        if gross > _CEILING:
            found.append(_contribution("061", "IRCANTEC", gross - _CEILING, 1950))
        bases.append(Base("28", start, end, gross, None, (), tuple(found)))
    for a in affiliations:
        component = ("10", gross) if a.oc == "PREVOYANCE" else ("20", a.contribution)
        fee = Contribution("059", a.oc, None, None, a.contribution)
        bases.append(Base("31", start, end, 0, a.affiliation, (component,), (fee,)))
    return tuple(bases)


def _envoi(truth: Truth, declared: Company, order: int) -> Iterator[bytes]:
    w = LineWriter()
    start, end = month_period(truth.month)
    extra = {"08": (("S20.G00.05.011", "01"),), "09": (("S20.G00.05.013", "01"),)}
    yield from envoi_header(
        w, declared, nature=truth.nature, kind=truth.type, month=truth.month, order=order,
        employees=truth.headcount, extra=extra.get(truth.nature, ()),
    )  # fmt: skip
    for adhesion in truth.adhesions:
        yield from (
            w.line("S21.G00.15.001", adhesion.contract), w.line("S21.G00.15.002", adhesion.oc_id),
            w.line("S21.G00.15.004", "01"), w.line("S21.G00.15.005", adhesion.adhesion),
        )  # fmt: skip
        if adhesion.former_oc_id is not None:
            changed = f"01{truth.month[2:4]}{int(truth.month[4:]) - 1}"
            yield w.line("S21.G00.16.001", changed)
            yield w.line("S21.G00.16.002", adhesion.former_oc_id)
    period = f"{truth.month[4:]}M{truth.month[2:4]}"
    for payment in truth.payments:
        yield w.line("S21.G00.20.001", payment.organism_id)
        if payment.organism == "DGFIP":
            yield w.line("S21.G00.20.002", "DGFIP_PAS")
        yield from (
            w.line("S21.G00.20.005", money(payment.amount)), w.line("S21.G00.20.006", start),
            w.line("S21.G00.20.007", end), w.line("S21.G00.20.010", "05"),
        )  # fmt: skip
        for contract_ref, amount in payment.components:
            yield from (
                w.line("S21.G00.55.001", money(amount)), w.line("S21.G00.55.003", contract_ref),
                w.line("S21.G00.55.004", period),
            )  # fmt: skip
    for slip in truth.slips:
        yield from (
            w.line("S21.G00.22.001", slip.organism_id), w.line("S21.G00.22.002", "URSSAF"),
            w.line("S21.G00.22.003", start), w.line("S21.G00.22.004", end),
            w.line("S21.G00.22.005", money(slip.amount)),
        )  # fmt: skip
        for ctp, assiette, amount in slip.lines:
            yield from (
                w.line("S21.G00.23.001", ctp), w.line("S21.G00.23.002", "920"),
                w.line("S21.G00.23.004", money(assiette)), w.line("S21.G00.23.005", money(amount)),
            )  # fmt: skip
    for person in truth.individuals():
        yield from _employee_lines(w, person, truth.month)
    yield from w.totals()


def _employee_lines(w: LineWriter, person: Individual, month: str) -> Iterator[bytes]:
    yield from identity(w, person.index)
    yield from contract(w, person.index, person.category)
    if person.sick_leave is not None:
        yield from _sick_leave(w, person.sick_leave, month)
    if person.exit is not None:
        yield from _exit(w, person, month)
    for reason in person.suspensions:
        yield from (w.line("S21.G00.65.001", reason), w.line("S21.G00.65.002", _day(month, 3)),
                    w.line("S21.G00.65.003", _day(month, 4)))  # fmt: skip
    for affiliation in person.affiliations:
        yield from _affiliation_lines(w, person.index, affiliation)
    if person.pension is not None:
        yield w.line("S21.G00.71.002", person.pension)
    if person.pas is not None:
        yield from _payslip(w, person, month)
    for kind in person.seniority:
        months = max(1, 12 * (int(month[4:]) - 2010 - person.index % 15))
        yield from (
            w.line("S21.G00.86.001", kind), w.line("S21.G00.86.002", "02"),
            w.line("S21.G00.86.003", str(months)), w.line("S21.G00.86.005", person.contract),
        )  # fmt: skip


def _sick_leave(w: LineWriter, leave: SickLeave, month: str) -> Iterator[bytes]:
    yield w.line("S21.G00.60.001", "01")
    yield w.line("S21.G00.60.002", leave.last_day)
    if leave.expected_end is not None:
        yield from (
            w.line("S21.G00.60.003", leave.expected_end), w.line("S21.G00.60.004", "01"),
            w.line("S21.G00.60.005", _day(month, 10)),
            w.line("S21.G00.60.006", leave.expected_end),
            # Subrogation: the employer's account, where the daily allowances are paid.
            w.line("S21.G00.60.007", EMPLOYER_IBAN), w.line("S21.G00.60.008", EMPLOYER_BIC),
        )  # fmt: skip
    if leave.return_date is not None:
        yield w.line("S21.G00.60.010", leave.return_date)
        yield w.line("S21.G00.60.011", "01")
    if leave.therapeutic:
        yield w.line("S21.G00.66.001", _day(month, 21))
        yield w.line("S21.G00.66.002", month_period(month)[1])


def _exit(w: LineWriter, person: Individual, month: str) -> Iterator[bytes]:
    """S21.G00.62; in an end-of-contract event (07), with its last paid day, the monthly DSN
    that will carry the last pay, and the notice (S21.G00.63)."""
    assert person.exit is not None
    end = person.exit
    yield w.line("S21.G00.62.001", end.date)
    yield w.line("S21.G00.62.002", end.reason)
    if end.notice:
        yield w.line("S21.G00.62.006", end.date)
    if person.affiliations:
        yield w.line("S21.G00.62.016", "01")
    if end.notice:
        yield from (
            w.line("S21.G00.62.020", month), w.line("S21.G00.63.001", "01"),
            w.line("S21.G00.63.002", _day(month, 1)), w.line("S21.G00.63.003", end.date),
        )  # fmt: skip


def _affiliation_lines(w: LineWriter, index: int, a: Affiliation) -> Iterator[bytes]:
    hired = f"01{1 + index % 12:02d}{2010 + index % 15}"
    yield from (w.line("S21.G00.70.004", a.option), w.line("S21.G00.70.005", a.population))
    if a.beneficiaries:
        yield w.line("S21.G00.70.009", str(len(a.beneficiaries)))
    yield from (
        w.line("S21.G00.70.012", a.affiliation), w.line("S21.G00.70.013", a.adhesion),
        w.line("S21.G00.70.014", hired),
    )  # fmt: skip
    for b in a.beneficiaries:
        yield from (
            w.line("S21.G00.73.003", b.kind),
            w.line("S21.G00.73.004", hired if b.kind == "01" else b.birth),
            w.line("S21.G00.73.005", b.birth), w.line("S21.G00.73.006", b.last_name),
        )  # fmt: skip
        if b.nir is not None:
            yield w.line("S21.G00.73.007", b.nir)
        yield w.line("S21.G00.73.009", b.first_name)


def _payslip(w: LineWriter, person: Individual, month: str) -> Iterator[bytes]:
    """S21.G00.50 with its remunerations, PAS regularisation, net social and bases."""
    assert person.pas is not None
    pas = person.pas
    gross = next(b.amount for b in person.bases if b.code == "03")
    start, end = person.bases[0].start, person.bases[0].end
    net = gross * 78 // 100
    yield from (
        w.line("S21.G00.50.001", end), w.line("S21.G00.50.002", money(net)),
        w.line("S21.G00.50.003", "01"), w.line("S21.G00.50.004", money(net - pas.amount)),
        w.line("S21.G00.50.006", pas.rate), w.line("S21.G00.50.007", "01"),
        w.line("S21.G00.50.008", str(100_000 + person.index)),
        w.line("S21.G00.50.009", money(pas.amount)), w.line("S21.G00.50.013", money(net)),
    )  # fmt: skip
    for kind in ("001", "002", "003", "010"):
        yield from (
            w.line("S21.G00.51.001", start), w.line("S21.G00.51.002", end),
            w.line("S21.G00.51.010", person.contract), w.line("S21.G00.51.011", kind),
            w.line("S21.G00.51.012", "151.67"), w.line("S21.G00.51.013", money(gross)),
        )  # fmt: skip
    if pas.regularisation is not None:
        previous = int(month[2:4]) - 1 or 12
        year = int(month[4:]) - (1 if previous == 12 else 0)
        yield from (
            w.line("S21.G00.56.001", f"{previous:02d}{year}"), w.line("S21.G00.56.002", "01"),
            w.line("S21.G00.56.003", money(5_000)), w.line("S21.G00.56.006", pas.rate),
            w.line("S21.G00.56.007", money(pas.regularisation)),
            w.line("S21.G00.56.010", money(5_000)),
        )  # fmt: skip
    yield from (
        w.line("S21.G00.58.001", start), w.line("S21.G00.58.002", end),
        w.line("S21.G00.58.003", "03"), w.line("S21.G00.58.004", money(gross * 77 // 100)),
    )  # fmt: skip
    for base in person.bases:
        yield from (
            w.line("S21.G00.78.001", base.code), w.line("S21.G00.78.002", base.start),
            w.line("S21.G00.78.003", base.end), w.line("S21.G00.78.004", money(base.amount)),
        )  # fmt: skip
        if base.affiliation is not None:
            yield w.line("S21.G00.78.005", base.affiliation)
        for kind, amount in base.components:
            yield w.line("S21.G00.79.001", kind)
            yield w.line("S21.G00.79.004", money(amount))
        for c in base.contributions:
            yield w.line("S21.G00.81.001", c.code)
            if c.organism_id is not None:
                yield w.line("S21.G00.81.002", c.organism_id)
            if c.base_amount is not None:
                yield w.line("S21.G00.81.003", money(c.base_amount))
            yield w.line("S21.G00.81.004", money(c.amount))


def _lot(envoi: Iterator[bytes], month: str) -> Iterator[bytes]:
    """The envoi in a lot envelope: its group DSNOK, the other groups empty."""
    w = LineWriter()
    number = f"{int(month[2:]):06d}"[-6:]
    yield from (
        w.line("S05.G51.00.001", "V01R02"), w.line("S05.G51.00.002", number),
        w.line("S05.G51.00.003", "01"), w.line("S05.G51.00.004", month_period(month)[1]),
        w.line("S05.G51.00.005", "120000"), w.line("S05.G51.00.006", "1"),
    )  # fmt: skip
    for group in _LOT_GROUPS:
        yield w.line("S06.G51.00.001", group)
        envois = 0
        if group == "DSNOK":
            yield from envoi
            envois = 1
        yield w.line("S96.G51.00.001", "FINSL")
        yield w.line("S96.G51.00.002", str(envois))
    yield w.line("S95.G51.00.001", number)
    yield w.line("S95.G51.00.002", "1")
