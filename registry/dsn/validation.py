"""Validation of DSN files against the norm (the DSN-VAL step): a certificate of conformity (CCO)
or an anomaly report (BAN).

Checked, streaming (memory holds one individual's blocks and one declaration's NIRs):
- the file: each line a rubric `Sxx.Gxx.xx.xxx,'value'`, ending in LF or CRLF;
- the norm's character set, the graphic characters of ISO-8859-1 (registry/dsn/reader.py says
  why): a NUL, a TAB, a CR inside a line or any other C0 or C1 control byte, in a value or
  anywhere in a line, is a blocking NEODES-CHARSET anomaly naming the line, the rubric when the
  line starts with one, and the byte and its column, never the value;
- each envoi against the norm version it declares in S10.G00.00.006 (a lot envelope against
  V01R02); an unsupported version is a blocking anomaly and its rubrics go unchecked;
- structure, as the one reading of the file (registry/dsn/reader.py) finds it: unknown blocks
  and rubrics, blocks out of order or opened where their parent is not, block cardinalities
  (the workbook's, which are a monthly DSN's: below the individual, an event declaration only
  has its maximums checked);
- data types: lengths, the norm's regex, the allowed values, calendar dates;
- SIREN and SIRET keys of the émetteur, the entreprise and each établissement;
- NIRs: forbidden 1999999999999 / 2999999999999, each NIR once per declaration;
- nature/type compatibility and a declaration with or without individuals;
- the S90 totals: rubric lines of the envoi (S90 lines included) and number of declarations;
- periods: a contract ends on or after its start, a remuneration period ends on or after it
  starts.

Anomalies carry the line, the rubric, the rule id (the norm's, like CCH-14, where the norm
has one; NEODES-* for the format's own rules) and whether they block. Blocks and rubrics the norm
does not know block, whatever their number (the portal's own additions, S10.G00.95 or 9xx, are
for the files it returns, never for a deposit): a line that one step could read one way and
another step another way is how a file smuggles data past a check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from registry.dsn.cardinalities import cardinality_faults
from registry.dsn.controls import NO_MONTH, ControlSet, date_key, load_controls, month_bounds
from registry.dsn.individual_segments import (
    CHUNK,
    INDIVIDUAL,
    READABLE,
    IndividualChecker,
    SharedPlans,
    Where,
    apply_facts,
    opening_establishment,
    segments,
)
from registry.dsn.norm import ENVELOPE_VERSION, Norm, UnsupportedVersion, load
from registry.dsn.reader import (
    Anomaly,
    BlockInstance,
    BlockListener,
    RubricLine,
    RubricReader,
    Walker,
    text_lines,
)

# A report lists at most this many anomalies; the others are only counted.
MAX_ANOMALIES = 1000
FORBIDDEN_NIRS = frozenset({"1999999999999", "2999999999999"})
# Type 04 (cancels) only for these natures; types 02 and 05 (without individuals) only for 01.
CANCEL_NATURES = frozenset({"07", "08", "09"})
WITHOUT_INDIVIDUALS = frozenset({"02", "05"})
WITH_INDIVIDUALS = frozenset({"01", "03"})
EVENT_NATURES = frozenset({"04", "05", "07"})
_ENVELOPE = ("S05", "S06", "S95", "S96")
_NO_FACTS: dict[str, list[str]] = {}
# The reading's faults of a block it could not place.
_MISPLACED = frozenset({"NEODES-PARENT", "NEODES-ORDER", "NEODES-UNKNOWN-BLOCK"})
# An individual: an employee (S21.G00.30) or a non-employee (S89.G00.91).
_INDIVIDUALS = frozenset({"S21.G00.30", "S89.G00.91"})
VERSION_UNKNOWN_FR = (
    "La version de norme déclarée n'est pas prise en charge : l'envoi n'est pas contrôlé."
)
VERSION_MISSING_FR = (
    "L'envoi ne déclare pas de version de norme (S10.G00.00.006) : il n'est pas contrôlé."
)
VERSION_PERIOD_FR = "Le mois principal déclaré n'est pas dans la période de validité de la norme."


@dataclass(slots=True)
class Declaration:
    """What routing and deposits need to know of one S20 declaration."""

    line: int
    nature: str = ""
    type: str = ""
    month: str = ""  # S20.G00.05.005, DDMMYYYY
    siren: str = ""
    sirets: list[str] = field(default_factory=list)
    individuals: int = 0

    @property
    def is_event(self) -> bool:
        """Sick leave, return to work, end of contract: routed at once."""
        return self.nature in EVENT_NATURES


@dataclass
class Report:
    """The outcome of a validation."""

    lines: int = 0
    envois: int = 0
    versions: list[str] = field(default_factory=list)
    emitter_siret: str = ""
    declarations: list[Declaration] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    blocking: int = 0
    warnings: int = 0

    @property
    def conformant(self) -> bool:
        """No blocking anomaly: the file gets a CCO."""
        return self.blocking == 0

    @property
    def kind(self) -> str:
        """CCO (certificate of conformity) or BAN (anomaly report)."""
        return "CCO" if self.conformant else "BAN"

    def add(self, anomaly: Anomaly) -> None:
        """Records an anomaly (past MAX_ANOMALIES, only counts it)."""
        if anomaly.blocking:
            self.blocking += 1
        else:
            self.warnings += 1
        if len(self.anomalies) < MAX_ANOMALIES:
            self.anomalies.append(anomaly)

    def as_dict(self) -> dict[str, object]:
        """Plain data, for JSON."""
        return {
            "kind": self.kind,
            "conformant": self.conformant,
            "lines": self.lines,
            "envois": self.envois,
            "versions": self.versions,
            "declarations": [
                {
                    "line": d.line,
                    "nature": d.nature,
                    "type": d.type,
                    "month": d.month,
                    "siren": d.siren,
                    "sirets": d.sirets,
                    "individuals": d.individuals,
                }
                for d in self.declarations
            ],
            "blocking": self.blocking,
            "warnings": self.warnings,
            "anomalies": [a.as_dict() for a in self.anomalies],
            "anomalies_not_listed": self.blocking + self.warnings - len(self.anomalies),
        }


def _digits(value: str | None) -> bool:
    """Only the digits 0-9 (str.isdigit also takes superscripts, which int() refuses)."""
    return bool(value) and value is not None and value.isascii() and value.isdigit()


class Validator(BlockListener):
    """Listens to a file's reading (`walk`); `report` holds the outcome once the file is read."""

    def __init__(self) -> None:
        self.report = Report()
        self.norm: Norm | None = None
        self.envelope = load(ENVELOPE_VERSION)
        self.envoi_lines = 0
        self.envoi_declarations = 0
        self.declaration: Declaration | None = None
        self.nirs: set[str] = set()
        self.controls: ControlSet | None = None
        self.month: tuple[str | None, str | None] = NO_MONTH
        # Whether the current envoi declared a norm version (supported or not).
        self.version_declared = False
        # The open instance of each block; those with a line that could not be read (by id),
        # and the blocks whose next instance has one (see _taint).
        self.open_blocks: dict[str, BlockInstance] = {}
        self.tainted: set[int] = set()
        self.taint_next: set[str] = set()
        self.innermost: BlockInstance | None = None
        # Whether the current declaration has a block the reading could not place (see fault).
        self.misplaced = False

    def _rule(self, rubric: str, wording: str, fallback: str) -> str:
        """The norm's rule id for `rubric` whose message contains `wording`, else `fallback`."""
        if self.norm is not None:
            for rule, message in self.norm.rules.get(rubric, {}).items():
                if wording in message:
                    return rule
        return fallback

    def _add(
        self,
        line: int,
        rubric: str,
        rule: str,
        message: str,
        *,
        blocking: bool = True,
        message_fr: str = "",
    ) -> None:
        self.report.add(Anomaly(line, rubric, rule, blocking, message, message_fr))

    def _add_norm(self, line: int, rubric: str, rule: tuple[str, str], message: str) -> None:
        """A blocking anomaly under the norm's rule of `rubric` whose text holds rule[0] (the
        fallback id rule[1] when the norm version has no such rule), with its French message."""
        rule_id = self._rule(rubric, *rule)
        french = self.norm.rules.get(rubric, {}).get(rule_id, "") if self.norm is not None else ""
        self._add(line, rubric, rule_id, message, message_fr=french.replace("_x000D_", "").strip())

    def fault(self, fault: Anomaly) -> None:
        """A line the reading could not place: blocking, never re-attached. From then on, the
        declaration's rules that look across blocks (cardinalities, references, blocks below)
        are not judged: the misplaced block is the anomaly, not what seems to lack it."""
        self.report.add(fault)
        if fault.rule in _MISPLACED:
            self.misplaced = True

    def line(self, item: RubricLine) -> None:
        """Takes the next line of the file."""
        self.report.lines += 1
        self.envoi_lines += 1
        if item.problem:
            rule = "NEODES-CHARSET" if item.column else "NEODES-SYNTAX"
            self._add(item.line, item.rubric, rule, item.problem)
            self._taint(item)
        elif item.rubric == "S10.G00.00.006":
            self._version(item)
        elif item.rubric == "S20.G00.05.001" and self.declaration is not None:
            self.declaration.nature = item.value
        elif item.rubric == "S20.G00.05.005":
            self.month = month_bounds(item.value)

    def end(self) -> None:
        """The file is read."""
        if self.report.envois == 0:
            self._add(1, "S10.G00.00", "NEODES-STRUCTURE", "the file holds no envoi (S10.G00.00)")
        self.report.anomalies.sort(key=lambda anomaly: anomaly.line)

    def _version(self, item: RubricLine) -> None:
        self.version_declared = True
        try:
            self.norm = load(item.value)
        except UnsupportedVersion as error:
            self.norm = self.controls = None
            self._add(item.line, item.rubric, "NEODES-VERSION", (
                f"{error}: the envoi's content is not checked"
            ), message_fr=VERSION_UNKNOWN_FR)  # fmt: skip
            return
        self.controls = load_controls(item.value)
        if item.value not in self.report.versions:
            self.report.versions.append(item.value)

    def _taint(self, item: RubricLine) -> None:
        """A line that could not be read belongs to the instance of its block open before it
        (or the next one, when it would have opened one): that instance's control rules are not
        judged, so that the one anomaly is the unreadable line, not a rubric it seems to lack."""
        block = item.rubric[:10]
        if not block:  # no rubric could be made out: the line sits in the innermost instance
            if self.innermost is not None:
                self.tainted.add(id(self.innermost))
            return
        current = self.open_blocks.get(block)
        if current is not None and item.rubric > current.lines[-1].rubric:
            self.tainted.add(id(current))
        else:
            self.taint_next.add(block)

    def opened(self, instance: BlockInstance) -> None:
        """Counts envois, declarations and individuals as they open."""
        block = instance.block
        self.open_blocks[block] = instance
        self.innermost = instance
        if block in self.taint_next:
            self.taint_next.discard(block)
            self.tainted.add(id(instance))
        if block == "S10.G00.00":
            self.report.envois += 1
            self.envoi_lines = 0
            self.envoi_declarations = 0
            self.norm = self.controls = None
            self.version_declared = False
        elif block == "S20.G00.05":
            self.misplaced = False
            self.envoi_declarations += 1
            self.nirs = set()
            self.declaration = Declaration(instance.line)
            self.month = NO_MONTH
            self.report.declarations.append(self.declaration)
        elif block in _INDIVIDUALS and self.declaration is not None:
            self.declaration.individuals += 1

    def closed(self, instance: BlockInstance) -> None:
        """Checks an instance once it and its children are read."""
        envelope = instance.block.startswith(_ENVELOPE)
        norm = self.envelope if envelope else self.norm
        if norm is not None:
            for item in instance.lines:
                if not item.problem:
                    self._check_type(item, norm)
        self._check_cardinality(instance, norm)
        if self.open_blocks.get(instance.block) is instance:
            del self.open_blocks[instance.block]
        if self.innermost is instance:
            self.innermost = instance.parent
        if self.controls is not None and not envelope:
            self._controls(instance, self.controls, judged=id(instance) not in self.tainted)
        self.tainted.discard(id(instance))
        check = _BLOCK_CHECKS.get(instance.block)
        if check is not None:  # after the rules: the declaration's check ends the declaration
            check(self, instance)

    def _controls(self, instance: BlockInstance, controls: ControlSet, judged: bool) -> None:
        """Runs the norm's control rules of this block (registry/dsn/controls.py) unless it is
        not `judged`, and records what rules of the blocks above need to know of it."""
        block = instance.block
        entry = controls.checks.get(block) if judged else None
        values = instance.values()
        if entry is not None:
            above: dict[str, dict[str, str]] = {}
            gathered: dict[str, dict[str, list[str]]] = {}
            parent = instance.parent
            while parent is not None:
                above[parent.block] = parent.values()
                gathered[parent.block] = parent.facts or _NO_FACTS
                parent = parent.parent
            nature = self.declaration.nature if self.declaration is not None else ""
            failed = entry(values, above, instance.facts or _NO_FACTS, gathered, nature, self.month)
            for index in failed:
                control = controls.controls[index]
                if control.across and self.misplaced:
                    continue
                line = next(
                    (item.line for item in instance.lines if item.rubric == control.rubric),
                    instance.line,
                )
                self.report.add(Anomaly(
                    line, control.rubric, control.id, control.blocking, control.message_en,
                    control.message_fr,
                ))  # fmt: skip
        recorded = controls.facts.get(block)
        if recorded is None:
            return
        for key, rubric, holders in recorded:
            value = "" if rubric is None else values.get(rubric)
            if value is None:
                continue
            parent = instance.parent
            while parent is not None:
                if parent.block in holders:
                    if parent.facts is None:
                        parent.facts = {}
                    parent.facts.setdefault(key, []).append(value)
                parent = parent.parent

    def _check_type(self, item: RubricLine, norm: Norm) -> bool:
        """Checks a value against its rubric's data type; True when it passed."""
        spec = norm.rubrics.get(item.rubric)
        if spec is None:  # never skipped: a line no step reads alike must not pass
            self._add(
                item.line,
                item.rubric,
                "NEODES-UNKNOWN-RUBRIC",
                f"rubric {item.rubric} is not in norm {norm.version}",
            )
            return False
        value = item.value
        if len(value) < spec.min or (spec.max is not None and len(value) > spec.max):
            longest = spec.max if spec.max is not None else "any"
            self._add(
                item.line,
                item.rubric,
                "NEODES-LENGTH",
                f"{spec.name}: {len(value)} characters, expected {spec.min} to {longest}",
            )
        elif spec.values is not None and value not in spec.values:
            self._add(
                item.line,
                item.rubric,
                "NEODES-VALUE",
                f"{spec.name}: {value!r} is not one of the norm's values",
            )
        elif spec.regex is not None and spec.regex.fullmatch(value) is None:
            self._add(
                item.line,
                item.rubric,
                "NEODES-FORMAT",
                f"{spec.name}: the value does not have the format of {spec.id}",
            )
        elif spec.kind == "Date" and date_key(value) is None:
            self._add(
                item.line,
                item.rubric,
                "NEODES-DATE",
                f"{spec.name}: {value!r} is not a calendar date (DDMMYYYY)",
            )
        else:
            return True
        return False

    def _check_cardinality(self, instance: BlockInstance, norm: Norm | None) -> None:
        if norm is None or instance.block not in norm.blocks or self.misplaced:
            return
        nature = self.declaration.nature if self.declaration is not None else ""
        block = instance.block
        for child, count, least, most in cardinality_faults(norm, block, instance.children, nature):
            english, french = (
                (f"needs at least {least}", f"doit contenir au moins {least}")
                if count < least
                else (f"holds at most {most}", f"contient au plus {most}")
            )
            self._add(instance.line, child.id, "NEODES-CARDINALITY", (
                f"block {block} {english} {child.id} ({child.name}) in a declaration of nature "
                f"{nature or '?'}, it has {count}"
            ), message_fr=(
                f"Le bloc {block} {french} bloc(s) {child.id} ({child.name}) pour cette nature "
                f"de déclaration ; il en contient {count}."
            ))  # fmt: skip

    def _emitter(self, instance: BlockInstance) -> None:
        siren, nic = instance.value("S10.G00.01.001"), instance.value("S10.G00.01.002")
        self.report.emitter_siret = f"{siren or ''}{nic or ''}"

    def _company(self, instance: BlockInstance) -> None:
        siren = instance.value("S21.G00.06.001")
        if self.declaration is not None and siren:
            self.declaration.siren = siren

    def _establishment(self, instance: BlockInstance) -> None:
        company = instance.parent
        siren = company.value("S21.G00.06.001") if company is not None else None
        nic = instance.value("S21.G00.11.001")
        if self.declaration is not None and siren and nic:
            self.declaration.sirets.append(siren + nic)

    def _individual(self, instance: BlockInstance) -> None:
        nir = instance.value("S21.G00.30.001")
        if nir is None:
            return
        if nir in FORBIDDEN_NIRS:
            forbidden = "this NIR is forbidden: declare a temporary number (S21.G00.30.020)"
            self._add_norm(instance.line, "S21.G00.30.001", ("'9'", "CCH-13"), forbidden)
        elif nir in self.nirs:
            self._add_norm(
                instance.line,
                "S21.G00.30.001",
                ("doublon", "CCH-14"),
                "the same NIR is declared twice in this declaration",
            )
        else:
            self.nirs.add(nir)

    def _declaration(self, instance: BlockInstance) -> None:
        nature = instance.value("S20.G00.05.001") or ""
        kind = instance.value("S20.G00.05.002") or ""
        declaration = self.declaration
        if declaration is not None:
            declaration.nature, declaration.type = nature, kind
            declaration.month = instance.value("S20.G00.05.005") or ""
        individuals = declaration.individuals if declaration is not None else 0
        self._period_in_version(instance)
        rubric = "S20.G00.05.002"
        if kind == "04" and nature not in CANCEL_NATURES:
            self._add_norm(
                instance.line,
                rubric,
                ("04 - déclaration annule", "CCH-13"),
                f"type 04 (cancels) is not allowed for nature {nature}",
            )
        elif kind in WITHOUT_INDIVIDUALS and nature != "01":
            self._add_norm(
                instance.line,
                rubric,
                ("sans individu", "CCH-14"),
                f"type {kind} (no individuals) is only for monthly DSNs (nature 01)",
            )
        elif kind in WITHOUT_INDIVIDUALS and individuals:
            self._add(
                instance.line,
                rubric,
                "NEODES-INDIVIDUALS",
                f"type {kind} declares no individual, this declaration has {individuals}",
            )
        elif kind in WITH_INDIVIDUALS and not individuals:
            self._add_norm(
                instance.line,
                rubric,
                ("aucun bloc", "CCH-16"),
                f"type {kind} needs at least one individual (S21.G00.30)",
            )
        self.declaration = None

    def _envoi(self, instance: BlockInstance) -> None:
        if not self.version_declared:
            self._add(instance.line, "S10.G00.00.006", "NEODES-VERSION", (
                "the envoi declares no norm version (S10.G00.00.006): its content is not checked"
            ), message_fr=VERSION_MISSING_FR)  # fmt: skip

    def _period_in_version(self, instance: BlockInstance) -> None:
        """A norm version PyyVnn is for the months of 20yy."""
        first = self.month[0]
        version = self.norm.version if self.norm is not None else ""
        if first is None or not version.startswith("P"):
            return
        if first[:4] != "20" + version[1:3]:
            line = next((i.line for i in instance.lines if i.rubric == "S20.G00.05.005"),
                        instance.line)  # fmt: skip
            self._add(line, "S20.G00.05.005", "NEODES-VERSION-PERIOD", (
                f"the declared month {first[4:6]}/{first[:4]} is outside norm {version}'s "
                f"validity (the months of 20{version[1:3]})"
            ), message_fr=VERSION_PERIOD_FR)  # fmt: skip

    def _totals(self, instance: BlockInstance) -> None:
        declared_lines = instance.value("S90.G00.90.001")
        declared_count = instance.value("S90.G00.90.002")
        if _digits(declared_lines) and int(str(declared_lines)) != self.envoi_lines:
            self._add(
                instance.line,
                "S90.G00.90.001",
                "NEODES-TOTAL-LINES",
                f"the envoi declares {int(str(declared_lines))} rubric lines, "
                f"it has {self.envoi_lines}",
            )
        declarations = self.envoi_declarations
        if _digits(declared_count) and int(str(declared_count)) != declarations:
            self._add(
                instance.line,
                "S90.G00.90.002",
                "NEODES-TOTAL-DECLARATIONS",
                f"the envoi declares {int(str(declared_count))} declarations, "
                f"it has {self.envoi_declarations}",
            )


_BLOCK_CHECKS: dict[str, Callable[[Validator, BlockInstance], None]] = {
    "S10.G00.00": Validator._envoi,
    "S10.G00.01": Validator._emitter,
    "S21.G00.06": Validator._company,
    "S21.G00.11": Validator._establishment,
    "S21.G00.30": Validator._individual,
    "S20.G00.05": Validator._declaration,
    "S90.G00.90": Validator._totals,
}


def validate(stream: BinaryIO | Iterable[bytes], plans: SharedPlans | None = None) -> Report:
    """Validates a whole file.

    Clean individuals take the fast path (registry/dsn/individual_segments.py); everything else,
    and any individual the fast path does not find clean, is read line by line. `plans`: the
    individuals' plans kept from one file to the next (a node's pipeline keeps them, so that
    its small deposits take the fast path too); without, this file's own."""
    return _Validation(plans=plans).run(stream)


class _Validation:
    """One validation: the reference reading (a Walker over the Validator) and the fast path."""

    def __init__(self, *, eager: bool = False, plans: SharedPlans | None = None) -> None:
        self.validator = Validator()
        self.walker = Walker(self.validator)
        self.lines = RubricReader()
        self.fast = IndividualChecker(
            frozenset(_BLOCK_CHECKS), FORBIDDEN_NIRS, eager=eager, shared=plans
        )

    def run(self, stream: BinaryIO | Iterable[bytes]) -> Report:
        """Reads the whole stream."""
        chunks = iter(lambda: stream.read(CHUNK), b"") if hasattr(stream, "read") else stream
        for text, following in segments(chunks):
            if following is None:
                self._slow(text)
            else:
                self._individual(text, following)
        self.walker.finish()
        self.fast.finish()
        return self.validator.report

    def _slow(self, text: bytes) -> None:
        """Line by line, the reference way."""
        read, push = self.lines.read, self.walker.push
        for raw in text_lines(text):
            item = read(raw)
            if item is not None:
                push(item)

    def _individual(self, text: bytes, following: bytes) -> None:
        """An individual (and what follows it up to the next one, whose first line is
        `following`): the fast way when clean.

        The reference way closes what is open below the establishment (the individual before)
        when this one's first line is read, and this one's own instances when `following` is:
        so both lines must be lines the reader reads (not blank, not faulty), or else this
        individual goes line by line."""
        validator, reader = self.validator, self.walker.reader
        norm, controls, declaration = validator.norm, validator.controls, validator.declaration
        first = text[: text.find(b"\n") + 1]
        establishment = opening_establishment(reader, first[:14].decode("iso-8859-1"))
        if (
            norm is None or controls is None or declaration is None or establishment is None
            or validator.taint_next or not READABLE.fullmatch(first)
            or not READABLE.fullmatch(following)
        ):  # fmt: skip
            self._slow(text)
            return
        # What the reference way does with this individual's first line: the individual before
        # closes (its rules run, its NIR and facts are recorded) before this one is judged.
        depth = reader.open.index(establishment) + 1
        for instance in reversed(reader.open[depth:]):
            validator.closed(instance)
        del reader.open[depth:]
        clean = self.fast.check(text, Where(norm, controls, declaration.nature, validator.month,
                                            establishment, validator.nirs))  # fmt: skip
        if clean is None:
            self._slow(text)
            return
        plan, deferred, nirs = clean
        self.lines.number += plan.lines
        validator.report.lines += plan.lines
        validator.envoi_lines += plan.lines
        declaration.individuals += plan.individuals
        children = establishment.children
        children[INDIVIDUAL] = children.get(INDIVIDUAL, 0) + plan.individuals
        validator.nirs.update(nirs)
        apply_facts(deferred)


def report_lines(report: Report) -> Iterator[str]:
    """The report as text for people."""
    verdict = (
        "conformant: certificate of conformity (CCO)"
        if report.conformant
        else ("not conformant: anomaly report (BAN)")
    )
    yield f"{verdict}"
    versions = ", ".join(report.versions) or "none"
    yield (
        f"{report.lines} lines, {report.envois} envoi(s), {len(report.declarations)} "
        f"declaration(s), norm {versions}"
    )
    yield f"{report.blocking} blocking anomalies, {report.warnings} warnings"
    for anomaly in report.anomalies:
        grade = "BLOCKING" if anomaly.blocking else "warning "
        where = f"line {anomaly.line:>7} {grade} {anomaly.rubric:<15} {anomaly.rule:<24}"
        yield f"  {where} {anomaly.message}"
        if anomaly.message_fr:
            yield f"  {'':<{len(where)}} fr: {anomaly.message_fr}"
    hidden = report.blocking + report.warnings - len(report.anomalies)
    if hidden:
        yield f"  ... and {hidden} more"
