"""Synthetic DSN files: valid monthly declarations of N employees with realistic rubrics
(contract, remuneration, bases and contributions, prévoyance, complementary pension, withholding
tax), events (sick leave, return to work, end of contract), and each kind of broken variant.

Files are produced line by line (bytes, ISO-8859-1, CRLF), so a 100,000-employee file never sits
in memory. The organisms they pay are the demo ones of `DEMO_ORGANISM_IDS`; the routing rules of
the demo know them by these identifiers.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from registry.dsn.norm import supported_versions
from registry.rcd.identifiers import luhn_complete
from registry.rcd.sirene_synth import siren_at, siret_of

# How each demo organism is named in a DSN (S21.G00.20.001, S21.G00.15.002, S21.G00.81.002).
URSSAF_SIRET = luhn_complete("7886177930001")
DEMO_ORGANISM_IDS = {
    "URSSAF": URSSAF_SIRET,
    "DGFIP": "DGFIP",
    "AGIRC-ARRCO": "A0700",
    "PREVOYANCE": "P0942",
    "MUTUELLE": "P0961",
}
NATURES = {"monthly": "01", "sick-leave": "04", "return-to-work": "05", "end-of-contract": "07"}
_LAST_NAMES = ("MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS",
               "MOREAU", "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX",
               "DAVID")  # fmt: skip
_FIRST_NAMES = ("CAMILLE", "LOUISE", "JULES", "EMMA", "GABRIEL", "ALICE", "LEO", "CHLOE", "HUGO",
                "ROSE", "ARTHUR", "JADE", "LOUIS", "LINA", "PAUL", "ANNA")  # fmt: skip


@dataclass(frozen=True)
class Company:
    """Who the declaration is for, and who sends it."""

    siren: str
    nic: str
    emitter_siren: str
    emitter_nic: str

    @property
    def siret(self) -> str:
        """The declared establishment."""
        return self.siren + self.nic


def company(siret: str, emitter_siret: str | None = None) -> Company:
    """A Company for that SIRET (sent by itself unless an émetteur SIRET is given)."""
    emitter = emitter_siret or siret
    return Company(siret[:9], siret[9:], emitter[:9], emitter[9:])


# The demo data's first client company of the demo accounting firm, which sends it.
DEMO_COMPANY = company(siret_of(siren_at(1), 1), siret_of(siren_at(0), 1))


_DEPARTMENTS = tuple(d for d in range(1, 96) if d != 20)


def nir(index: int) -> str:
    """A well-formed 13-character NIR, distinct for each index below 998,001."""
    sex = 1 + index % 2
    year = 60 + index % 40
    month = 1 + index % 12
    # Departments 01 to 95 but 20 (Corsica, split in 1976: 2A/2B for births from then on).
    department = _DEPARTMENTS[(index // 12) % len(_DEPARTMENTS)]
    commune, order = 1 + index // 999 % 999, 1 + index % 999
    return f"{sex}{year:02d}{month:02d}{department:02d}{commune:03d}{order:03d}"


def money(cents: int) -> str:
    """Cents as the norm writes amounts: 1234.05, -12.50."""
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


class LineWriter:
    """Writes rubric lines and counts them, for the envoi's S90 total."""

    def __init__(self) -> None:
        self.count = 0

    def line(self, rubric: str, value: str) -> bytes:
        """One line `rubric,'value'` (ISO-8859-1, CRLF)."""
        self.count += 1
        return f"{rubric},'{value}'\r\n".encode("iso-8859-1")

    def totals(self, declarations: int = 1) -> Iterator[bytes]:
        """The S90 block closing the envoi: its line count (the two S90 lines included)."""
        total = self.count + 2
        yield self.line("S90.G00.90.001", str(total))
        yield self.line("S90.G00.90.002", str(declarations))


def norm_version(month: str) -> str:
    """The norm version for a declared month (01MMYYYY): PyyV01 of its year, within the versions
    supported (the first before them, the last after)."""
    versions = supported_versions()
    wanted = f"P{int(month[4:]) % 100:02d}V01"
    return min(max(wanted, versions[0]), versions[-1])


def month_period(month: str) -> tuple[str, str]:
    """The first and last days (DDMMYYYY) of a declared month given as 01MMYYYY."""
    mm, yyyy = month[2:4], month[4:]
    last_day = calendar.monthrange(int(yyyy), int(mm))[1]
    return f"01{mm}{yyyy}", f"{last_day:02d}{mm}{yyyy}"


def envoi_header(
    w: LineWriter,
    declared: Company,
    *,
    nature: str,
    kind: str,
    month: str,
    order: int,
    employees: int,
    extra: tuple[tuple[str, str], ...] = (),
) -> Iterator[bytes]:
    """An envoi's lines down to the declared establishment (S10, S20, S21.G00.06, S21.G00.11);
    `extra` are rubrics of the declaration after S20.G00.05.010 (.011, .013...)."""
    yield from (
        w.line("S10.G00.00.001", "INTEROPS-SYNTH"), w.line("S10.G00.00.002", "INTEROPS"),
        w.line("S10.G00.00.003", "1.0"), w.line("S10.G00.00.005", "02"),
        w.line("S10.G00.00.006", norm_version(month)), w.line("S10.G00.00.007", "01"),
        w.line("S10.G00.00.008", "01"),
        w.line("S10.G00.01.001", declared.emitter_siren),
        w.line("S10.G00.01.002", declared.emitter_nic),
        w.line("S10.G00.01.003", "CABINET EXEMPLE"), w.line("S10.G00.01.004", "12 RUE DES LILAS"),
        w.line("S10.G00.01.005", "75011"), w.line("S10.G00.01.006", "PARIS"),
        w.line("S10.G00.02.001", "01"), w.line("S10.G00.02.002", "PAIE SERVICE"),
        w.line("S10.G00.02.004", "paie@cabinet.example"), w.line("S10.G00.02.005", "0102030405"),
        w.line("S20.G00.05.001", nature), w.line("S20.G00.05.002", kind),
        w.line("S20.G00.05.003", "11"), w.line("S20.G00.05.004", str(order)),
        w.line("S20.G00.05.005", month), w.line("S20.G00.05.007", month_period(month)[1]),
        w.line("S20.G00.05.008", "01"), w.line("S20.G00.05.010", "01"),
    )  # fmt: skip
    yield from (w.line(rubric, value) for rubric, value in extra)
    yield from (
        w.line("S21.G00.06.001", declared.siren), w.line("S21.G00.06.002", declared.nic),
        w.line("S21.G00.06.003", "6201Z"), w.line("S21.G00.06.004", "3 AVENUE DU PORT"),
        w.line("S21.G00.06.005", "69002"), w.line("S21.G00.06.006", "LYON"),
    )  # fmt: skip
    # The headcounts (S21.G00.06.009, S21.G00.11.008) left the norm in P26V01.
    headcount = norm_version(month) < "P26V01"
    if headcount:
        yield w.line("S21.G00.06.009", str(employees))
    yield from (
        w.line("S21.G00.11.001", declared.nic), w.line("S21.G00.11.002", "6201Z"),
        w.line("S21.G00.11.003", "3 AVENUE DU PORT"), w.line("S21.G00.11.004", "69002"),
        w.line("S21.G00.11.005", "LYON"),
    )  # fmt: skip
    if headcount:
        yield w.line("S21.G00.11.008", str(employees))
    yield w.line("S21.G00.11.017", "01")


def generate(
    employees: int,
    *,
    month: str = "01032026",
    nature: str = "01",
    declared: Company = DEMO_COMPANY,
    seed: int = 0,
    order: int = 1,
) -> Iterator[bytes]:
    """The lines of one envoi holding one declaration of `employees` employees.

    `month` is the declared month (01MMYYYY); `order` the declaration's order number (two
    deposits of the same company and month differ by it)."""
    rng = random.Random(seed)
    w = LineWriter()
    start, end = month_period(month)
    kind = "01" if employees or nature != "01" else "02"
    yield from envoi_header(
        w, declared, nature=nature, kind=kind, month=month, order=order, employees=employees
    )
    # The adhesion every employee's affiliation (S21.G00.70.013) refers to, in every nature.
    yield from (
        w.line("S21.G00.15.001", "PREV-2024-001"),
        w.line("S21.G00.15.002", DEMO_ORGANISM_IDS["PREVOYANCE"]),
        w.line("S21.G00.15.004", "01"), w.line("S21.G00.15.005", "1"),
    )  # fmt: skip
    if nature == "01":
        gross = 320_000 * employees
        for organism, amount in (("URSSAF", gross * 42 // 100), ("DGFIP", gross * 5 // 100),
                                 ("AGIRC-ARRCO", gross * 12 // 100),
                                 ("PREVOYANCE", gross // 100)):  # fmt: skip
            yield from (
                w.line("S21.G00.20.001", DEMO_ORGANISM_IDS[organism]),
                w.line("S21.G00.20.005", money(amount)), w.line("S21.G00.20.006", start),
                w.line("S21.G00.20.007", end), w.line("S21.G00.20.010", "05"),
            )  # fmt: skip
        yield from (
            w.line("S21.G00.22.001", URSSAF_SIRET), w.line("S21.G00.22.002", "URSSAF"),
            w.line("S21.G00.22.003", start), w.line("S21.G00.22.004", end),
            w.line("S21.G00.22.005", money(gross * 42 // 100)),
            w.line("S21.G00.23.001", "100"), w.line("S21.G00.23.002", "920"),
            w.line("S21.G00.23.004", money(gross)),
            w.line("S21.G00.23.005", money(gross * 42 // 100)),
        )  # fmt: skip
    # An event (sick leave, return, end of contract) concerns one employee.
    for index in range(employees if nature == "01" else 1):
        yield from _individual(w, rng, index, nature, (start, end))
    yield from w.totals()


def contract_number(index: int) -> str:
    """The index-th employee's contract number (S21.G00.40.009)."""
    return f"CT{index + 1:06d}"


def identity(w: LineWriter, index: int) -> Iterator[bytes]:
    """The index-th employee's S21.G00.30 block (NIR `nir(index)`)."""
    yield from (
        w.line("S21.G00.30.001", nir(index)),
        w.line("S21.G00.30.002", _LAST_NAMES[index % len(_LAST_NAMES)]),
        w.line("S21.G00.30.004", _FIRST_NAMES[(index * 7) % len(_FIRST_NAMES)]),
        w.line("S21.G00.30.005", "01" if index % 2 == 0 else "02"),
        w.line("S21.G00.30.006", f"{1 + index % 28:02d}{1 + index % 12:02d}{1960 + index % 40}"),
        w.line("S21.G00.30.007", "LYON"),
        w.line("S21.G00.30.008", f"{1 + index % 90} RUE DU MARCHE"),
        w.line("S21.G00.30.009", "69003"), w.line("S21.G00.30.010", "LYON"),
        w.line("S21.G00.30.014", "69"), w.line("S21.G00.30.015", "FR"),
        w.line("S21.G00.30.019", f"M{index + 1:05d}"),
    )  # fmt: skip


def contract(w: LineWriter, index: int, category: str = "04") -> Iterator[bytes]:
    """The index-th employee's S21.G00.40 contract lines (open-ended, full time), with that
    complementary-pension category (S21.G00.40.003: 04 non-cadre, 98 no such distinction...)."""
    hired_year = 2010 + index % 15
    yield from (
        w.line("S21.G00.40.001", f"01{1 + index % 12:02d}{hired_year}"),
        w.line("S21.G00.40.002", "04"), w.line("S21.G00.40.003", category),
        w.line("S21.G00.40.004", "388a"), w.line("S21.G00.40.006", "DEVELOPPEUR"),
        w.line("S21.G00.40.007", "01"), w.line("S21.G00.40.008", "99"),
        w.line("S21.G00.40.009", contract_number(index)), w.line("S21.G00.40.011", "10"),
        w.line("S21.G00.40.012", "151.67"), w.line("S21.G00.40.013", "151.67"),
        w.line("S21.G00.40.014", "10"), w.line("S21.G00.40.016", "99"),
        w.line("S21.G00.40.017", "1486"), w.line("S21.G00.40.018", "200"),
        w.line("S21.G00.40.019", "00017"), w.line("S21.G00.40.020", "200"),
        w.line("S21.G00.40.024", "99"), w.line("S21.G00.40.026", "99"),
        w.line("S21.G00.40.036", "02"), w.line("S21.G00.40.037", "02"),
        w.line("S21.G00.40.039", "200"), w.line("S21.G00.40.040", "620ZD"),
        w.line("S21.G00.40.043", "1.20"),
    )  # fmt: skip


def _individual(
    w: LineWriter, rng: random.Random, index: int, nature: str, period: tuple[str, str]
) -> Iterator[bytes]:
    start, end = period
    mm, yyyy = start[2:4], start[4:]
    number = contract_number(index)
    yield from identity(w, index)
    yield from contract(w, index)
    if nature == "04":
        yield from (
            w.line("S21.G00.60.001", "01"), w.line("S21.G00.60.002", f"09{mm}{yyyy}"),
            w.line("S21.G00.60.003", f"20{mm}{yyyy}"), w.line("S21.G00.60.004", "02"),
        )  # fmt: skip
    elif nature == "05":
        yield from (
            w.line("S21.G00.60.001", "01"), w.line("S21.G00.60.002", f"09{mm}{yyyy}"),
            w.line("S21.G00.60.010", f"21{mm}{yyyy}"), w.line("S21.G00.60.011", "01"),
        )  # fmt: skip
    elif nature == "07":
        yield from (
            w.line("S21.G00.62.001", end), w.line("S21.G00.62.002", "059"),
            w.line("S21.G00.62.006", end), w.line("S21.G00.62.017", "01"),
            w.line("S21.G00.63.001", "01"), w.line("S21.G00.63.002", start),
            w.line("S21.G00.63.003", end),
        )  # fmt: skip
    yield from (
        w.line("S21.G00.70.004", "OPT1"), w.line("S21.G00.70.005", "CADRES"),
        w.line("S21.G00.70.012", "1"), w.line("S21.G00.70.013", "1"),
        w.line("S21.G00.71.002", "RUAA"),
    )  # fmt: skip
    if nature != "01":
        return
    gross = 250_000 + rng.randrange(0, 400_000)
    net = gross * 78 // 100
    rate = 500 + index % 900  # PAS rate, hundredths of a percent
    tax = net * rate // 10_000
    yield from (
        w.line("S21.G00.50.001", end), w.line("S21.G00.50.002", money(net)),
        w.line("S21.G00.50.003", "01"), w.line("S21.G00.50.004", money(net - tax)),
        w.line("S21.G00.50.006", f"{rate // 100}.{rate % 100:02d}"), w.line("S21.G00.50.007", "01"),
        w.line("S21.G00.50.008", str(100_000 + index)), w.line("S21.G00.50.009", money(tax)),
        w.line("S21.G00.50.013", money(net)),
    )  # fmt: skip
    for kind, amount, hours in (("001", gross, "151.67"), ("002", gross, "151.67"),
                                ("003", gross, "151.67"), ("010", gross, "151.67")):  # fmt: skip
        yield from (
            w.line("S21.G00.51.001", start), w.line("S21.G00.51.002", end),
            w.line("S21.G00.51.010", number), w.line("S21.G00.51.011", kind),
            w.line("S21.G00.51.012", hours), w.line("S21.G00.51.013", money(amount)),
        )  # fmt: skip
    ceiling = min(gross, 386_400)
    for base, amount, contributions in (
        ("02", ceiling, (("075", "URSSAF", 690), ("076", "URSSAF", 1_030))),
        ("03", gross, (("100", "URSSAF", 1_300), ("045", "URSSAF", 40))),
        ("04", gross * 9825 // 10_000, (("072", "URSSAF", 680), ("079", "URSSAF", 290))),
        ("07", gross, (("040", "URSSAF", 320),)),
    ):
        yield from (
            w.line("S21.G00.78.001", base), w.line("S21.G00.78.002", start),
            w.line("S21.G00.78.003", end), w.line("S21.G00.78.004", money(amount)),
        )  # fmt: skip
        for code, organism, per_ten_thousand in contributions:
            yield from (
                w.line("S21.G00.81.001", code),
                w.line("S21.G00.81.002", DEMO_ORGANISM_IDS[organism]),
                w.line("S21.G00.81.003", money(amount)),
                w.line("S21.G00.81.004", money(amount * per_ten_thousand // 10_000)),
            )  # fmt: skip


def _replace(rubric: str, value: str, nth: int = 1) -> Callable[[list[bytes]], list[bytes]]:
    def edit(lines: list[bytes]) -> list[bytes]:
        seen = 0
        prefix = rubric.encode() + b","
        for position, line in enumerate(lines):
            if line.startswith(prefix):
                seen += 1
                if seen == nth:
                    lines[position] = f"{rubric},'{value}'\r\n".encode("iso-8859-1")
                    return lines
        raise ValueError(f"no {rubric} #{nth} in the file")

    return edit


def _drop_block(block: str) -> Callable[[list[bytes]], list[bytes]]:
    def edit(lines: list[bytes]) -> list[bytes]:
        kept = [line for line in lines if not line.startswith(block.encode())]
        dropped = len(lines) - len(kept)
        return _fix_total(kept, dropped)

    return edit


def _fix_total(lines: list[bytes], dropped: int) -> list[bytes]:
    for position, line in enumerate(lines):
        if line.startswith(b"S90.G00.90.001"):
            total = int(line.split(b"'")[1]) - dropped
            lines[position] = f"S90.G00.90.001,'{total}'\r\n".encode()
    return lines


def _insert_after(rubric: str, text: bytes) -> Callable[[list[bytes]], list[bytes]]:
    def edit(lines: list[bytes]) -> list[bytes]:
        position = next(i for i, line in enumerate(lines) if line.startswith(rubric.encode()))
        lines.insert(position + 1, text)
        return _fix_total(lines, -1)

    return edit


def _swap_first(first: str, second: str) -> Callable[[list[bytes]], list[bytes]]:
    """Moves the first instance of block `second` (with its lines) before block `first`."""

    def edit(lines: list[bytes]) -> list[bytes]:
        start = next(i for i, line in enumerate(lines) if line.startswith(second.encode()))
        stop = start
        while stop < len(lines) and lines[stop].startswith(second.encode()):
            stop += 1
        moved = lines[start:stop]
        del lines[start:stop]
        target = next(i for i, line in enumerate(lines) if line.startswith(first.encode()))
        return lines[:target] + moved + lines[target:]

    return edit


def _duplicate_nir(lines: list[bytes]) -> list[bytes]:
    """The second employee gets the first's NIR, with its sex and birth date (which the NIR
    encodes), so that the duplicate is the only fault."""
    for rubric in ("S21.G00.30.001", "S21.G00.30.005", "S21.G00.30.006"):
        first = next(line for line in lines if line.startswith(rubric.encode()))
        lines = _replace(rubric, first.split(b"'")[1].decode(), nth=2)(lines)
    return lines


# Each broken variant: what it does to a valid 3-employee monthly file, and the rule id the
# validator must report.
BROKEN: dict[str, tuple[Callable[[list[bytes]], list[bytes]], str]] = {
    "malformed-line": (
        _insert_after("S21.G00.30.002", b"S21.G00.30.003 MARTIN\r\n"),
        "NEODES-SYNTAX",
    ),
    "unsupported-version": (_replace("S10.G00.00.006", "P19V01"), "NEODES-VERSION"),
    "unknown-rubric": (
        _insert_after("S21.G00.30.019", b"S21.G00.30.099,'X'\r\n"),
        "NEODES-UNKNOWN-RUBRIC",
    ),
    "block-out-of-order": (_swap_first("S21.G00.15", "S21.G00.20"), "NEODES-ORDER"),
    "missing-block": (_drop_block("S21.G00.71"), "NEODES-CARDINALITY"),
    "too-long": (_replace("S21.G00.30.002", "X" * 81), "NEODES-LENGTH"),
    "value-not-allowed": (_replace("S21.G00.30.005", "07"), "NEODES-VALUE"),
    "bad-format": (_replace("S21.G00.50.002", "12,50"), "NEODES-FORMAT"),
    "bad-date": (_replace("S21.G00.40.001", "31022015"), "NEODES-DATE"),
    "emitter-siren-key": (_replace("S10.G00.01.001", "123456789"), "CSL-11"),
    "establishment-siret-key": (_replace("S21.G00.11.001", "00099"), "CSL-12"),
    "forbidden-nir": (_replace("S21.G00.30.001", "1999999999999"), "CCH-13"),
    "duplicate-nir": (_duplicate_nir, "CCH-14"),
    "nature-type": (_replace("S20.G00.05.002", "04"), "CCH-13"),
    "period": (_replace("S21.G00.51.002", "01012020"), "CCH-11"),
    "total-lines": (_replace("S90.G00.90.001", "7"), "NEODES-TOTAL-LINES"),
    "total-declarations": (_replace("S90.G00.90.002", "2"), "NEODES-TOTAL-DECLARATIONS"),
}


def broken(variant: str, employees: int = 3) -> bytes:
    """A monthly file of `employees` employees broken in the way `variant` names."""
    edit, _ = BROKEN[variant]
    return b"".join(edit(list(generate(employees))))
