"""A scan of a DSN as its bytes arrive: the facts a deposit is answered on at once (AEE or ARE)
before the full validation: the norm version, the nature, type and month of the declaration,
and every declared SIRET; and the rules that refuse a file as a whole (its ARE), among them a
structure the reading cannot place without a guess."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from registry.dsn.deposit_reading import WORKER_PLANS, DepositReading, read_whole
from registry.dsn.deposit_store import NewDeposit, Receipt
from registry.dsn.norm import supported_versions
from registry.dsn.planned_walk import walk_planned
from registry.dsn.reader import (
    Anomaly,
    BlockInstance,
    BlockListener,
    LineSplitter,
    RubricLine,
    RubricReader,
    Walker,
)
from registry.dsn.routing import Router

if TYPE_CHECKING:
    from registry.dsn.planned_walk import PlannedIndividual

# More declared SIRETs than this and the scan stops collecting them (and says so).
MAX_SIRETS = 10_000
_COMPANY, _ESTABLISHMENT, _DECLARATION = "S21.G00.06", "S21.G00.11", "S20.G00.05"
_EMITTER = "S10.G00.01"


@dataclass
class DepositScan(BlockListener):
    """Feed it the file's chunks in order, then `finish`. It reads them through the same reader
    as validation, relations and routing (registry/dsn/reader.py), so the establishments whose
    rights it checks are those the other steps see: a SIRET is the SIREN of the company block
    an establishment block is under, never a line read on its own."""

    versions: list[str] = field(default_factory=list)
    nature: str = ""
    type: str = ""
    month: str = ""
    sirets: list[str] = field(default_factory=list)
    lines: int = 0
    starts_with_rubric: bool | None = None
    too_many_sirets: bool = False
    # The first line the reading could not place, or a company block without exactly one
    # establishment: the file is refused (a deposit's rights are checked on a clear structure).
    ambiguity: str = ""
    emitters: list[str] = field(default_factory=list)
    _lines: LineSplitter = field(default_factory=LineSplitter)
    _rubrics: RubricReader = field(default_factory=RubricReader)
    _walker: Walker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._walker = Walker(self)

    def feed(self, chunk: bytes) -> None:
        """Takes the next bytes of the file."""
        read, push = self._rubrics.read, self._walker.push
        for line in self._lines.feed(chunk):
            item = read(line)
            if item is not None:
                push(item)

    def finish(self) -> DepositScan:
        """Reads the last line; returns self."""
        last = self._lines.finish()
        if last:
            item = self._rubrics.read(last)
            if item is not None:
                self._walker.push(item)
        self._walker.finish()
        return self

    def fault(self, fault: Anomaly) -> None:
        """A line the reading could not place."""
        if not self.ambiguity:
            self.ambiguity = f"line {fault.line}: {fault.message}"

    def line(self, item: RubricLine) -> None:
        """Counts lines; notes the norm versions."""
        self.lines += 1
        if self.starts_with_rubric is None:
            self.starts_with_rubric = not item.problem
        if item.rubric == "S10.G00.00.006" and not item.problem:
            self.versions.append(item.value)

    def individual(self, individual: PlannedIndividual) -> None:
        """A clean individual taken whole (registry/dsn/planned_walk.py): its lines count (none
        of its blocks is one the scan takes)."""
        self.lines += individual.plan.lines
        if self.starts_with_rubric is None:
            self.starts_with_rubric = True

    def closed(self, instance: BlockInstance) -> None:
        """Takes the declaration's facts and each establishment's SIRET."""
        block = instance.block
        if block == _EMITTER:
            siret = (instance.value("S10.G00.01.001") or "") + (
                instance.value("S10.G00.01.002") or ""
            )
            if siret not in self.emitters and len(self.emitters) < MAX_SIRETS:
                self.emitters.append(siret)
        elif block == _DECLARATION and not self.nature:
            self.nature = instance.value("S20.G00.05.001") or ""
            self.type = instance.value("S20.G00.05.002") or ""
            self.month = instance.value("S20.G00.05.005") or ""
        elif block == _COMPANY and instance.children.get(_ESTABLISHMENT, 0) != 1:
            if not self.ambiguity:
                self.ambiguity = (
                    f"line {instance.line}: the company block holds "
                    f"{instance.children.get(_ESTABLISHMENT, 0)} establishment blocks, not one"
                )
        elif block == _ESTABLISHMENT:
            company = instance.parent
            siren = company.value("S21.G00.06.001") if company is not None else None
            if company is None or company.block != _COMPANY or not siren:
                if not self.ambiguity:
                    self.ambiguity = f"line {instance.line}: an establishment without its company"
                return
            siret = siren + (instance.value("S21.G00.11.001") or "")
            if siret not in self.sirets:
                if len(self.sirets) >= MAX_SIRETS:
                    self.too_many_sirets = True
                else:
                    self.sirets.append(siret)

    def refusal(
        self,
        size: int,
        entitled: Callable[[str], bool],
        right: str,
        own_emitter: Callable[[str], bool],
        taken_over: Mapping[str, str] | None = None,
    ) -> Refusal | None:
        """Why the file of `size` bytes is refused as a whole (its ARE), or None when it is
        taken (AEE); `entitled` says whether the depositor holds `right` over a SIRET,
        `own_emitter` whether an émetteur SIRET (S10.G00.01) is the depositor's own (the links
        a file reveals are recorded under its émetteur), `taken_over` the declared
        establishments another firm took over from the émetteur's company, with the period it
        did (registry/habilitation/managed.py)."""
        if size == 0:
            return Refusal("EMPTY_FILE", "the file is empty")
        if not self.starts_with_rubric or not self.versions:
            return Refusal(
                "NOT_A_DSN", "the file is not a NEODeS DSN (no S10.G00.00.006 norm version)"
            )
        unsupported = sorted(set(self.versions) - set(supported_versions()))
        if unsupported:
            return Refusal("UNSUPPORTED_VERSION", (
                f"norm version {unsupported[0]} is not supported; one of "
                f"{', '.join(supported_versions())}"
            ))  # fmt: skip
        if self.ambiguity:
            return Refusal(
                "AMBIGUOUS_STRUCTURE", f"the file's structure is ambiguous: {self.ambiguity}"
            )
        if self.period() > _this_period():
            return Refusal("PERIOD_IN_FUTURE", (
                f"the declared month {self.month} has not begun: a DSN declares a month that has"
            ))  # fmt: skip
        if not self.sirets:
            return Refusal(
                "NO_ESTABLISHMENT", "the file declares no establishment (S21.G00.06/S21.G00.11)"
            )
        if self.too_many_sirets:
            return Refusal("TOO_MANY_ESTABLISHMENTS", "the file declares too many establishments")
        outside = [siret for siret in self.sirets if not entitled(siret)]
        if outside:
            return Refusal(
                "NOT_ENTITLED", f"the token does not grant {right} over establishment {outside[0]}"
            )
        foreign = [siret for siret in self.emitters if not own_emitter(siret)]
        if foreign or not self.emitters:
            shown = foreign[0] if foreign else "none"
            return Refusal("EMITTER_NOT_YOURS", (
                f"the émetteur (S10.G00.01) must be the depositor's own establishment, not {shown}"
            ))  # fmt: skip
        if taken_over:
            siret, period = min(taken_over.items())
            return Refusal("DECLARED_BY_ANOTHER_FIRM", (
                f"establishment {siret} is declared by another firm since period {period}: only "
                "a mandate from its company's administrator lets you declare it again"
            ))  # fmt: skip
        return None

    def period(self) -> str:
        """The declared month as a YYYYMM period ("" when the file gives none readable)."""
        month = self.month
        return (
            month[4:8] + month[2:4]
            if len(month) == 8 and month.isascii() and month.isdigit()
            else ""
        )

    def described(self, new: NewDeposit, refusal: Refusal | None) -> NewDeposit:
        """The deposit as the scan found it, with its receipt: an ARE when refused."""
        return replace(
            new, receipt=Receipt.ARE if refusal else Receipt.AEE,
            rejection_code=refusal.code if refusal else "",
            rejection_message=refusal.message if refusal else "",
            norm_version=self.versions[0] if self.versions else "", nature=self.nature,
            type=self.type, month=self.month, sirets=tuple(self.sirets),
        )  # fmt: skip


def _this_period() -> str:
    """This month as a YYYYMM period: a declared month may not be later (a month to come would
    end, now, the link of the firm that really declares the establishment)."""
    today = datetime.datetime.now(datetime.UTC).date()
    return f"{today.year:04d}{today.month:02d}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file is refused as a whole: a stable code (the ARE's) and a sentence."""

    code: str
    message: str


def scan_whole(data: bytes) -> DepositScan:
    """The scan of a file held whole (what a worker process runs: server/dsn/reading_pool.py),
    its clean individuals taken whole where the process's readings planned their shapes (the
    planned walk: registry/dsn/planned_walk.py; the same scan as line by line)."""
    scan = DepositScan()
    walk_planned((data,), WORKER_PLANS, scan)
    return scan


def scan_and_read_whole(data: bytes, router: Router) -> tuple[DepositScan, DepositReading | None]:
    """The scan of a file held whole and, heard on the same walk, its reading
    (registry/dsn/deposit_reading.py `read_whole`, on the SIRETs the scan found): what a worker
    process runs when a deposit arrives, so that the pipeline need not read it again (a scan
    whose file is refused wastes its reading). The same as `scan_whole` and then `read_whole`:
    each step hears the same reader's lines and instances, whoever else listens."""
    scan = DepositScan()
    try:
        return scan, read_whole(data, lambda: scan.sirets, router, scan)
    except Exception:  # a reading that fails fails in the pipeline, as it would have: the
        return scan_whole(data), None  # deposit is answered on its scan alone
