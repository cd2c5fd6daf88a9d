"""Bulk import of a Sirene stock file into the RCD, in atomic batches of idempotent upserts.

Each batch is one transaction: it is applied whole or not at all, so an interrupted import leaves
only complete batches behind, and running the same file again applies nothing twice (unchanged
rows are left alone). Rejected lines are reported with their line number and reason and never stop
the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine

from registry.rcd_records import CompanyRecord, EstablishmentRecord
from registry.rcd_store import RcdStore
from registry.sirene_stock import Rejection, StockKind, read_stock

MAX_LISTED_REJECTIONS = 1000
DEFAULT_BATCH_SIZE = 5000


class ImportInterrupted(RuntimeError):
    """The import was asked to stop; the batches applied so far are kept."""


@dataclass
class ImportOutcome:
    """Counts of an import so far, and its first rejected lines."""

    kind: StockKind
    lines_read: int = 0
    lines_applied: int = 0
    lines_changed: int = 0
    lines_rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, rejection: Rejection) -> None:
        """Counts a rejected line, keeping the first ones for the report."""
        self.lines_rejected += 1
        if len(self.rejections) < MAX_LISTED_REJECTIONS:
            self.rejections.append(rejection)


def _decoded(raw: BinaryIO, undecodable: set[int]) -> Iterator[str]:
    # Decoding line by line lets one bad byte reject its line, not the file.
    for number, line in enumerate(raw, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            undecodable.add(number)
            yield line.decode("utf-8", "replace")


def import_stock(
    engine: Engine,
    path: Path,
    *,
    expected: StockKind | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int, ImportOutcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ImportOutcome:
    """Imports a stock file; calls on_batch(bytes read, outcome) after each committed batch.

    Raises StockFormatError before applying anything when the file is not a stock file, and
    ImportInterrupted between batches once should_stop() is true.
    """
    store = RcdStore(engine)
    undecodable: set[int] = set()
    with path.open("rb") as raw:
        kind, lines = read_stock(_decoded(raw, undecodable), expected)
        outcome = ImportOutcome(kind)
        batch: list[CompanyRecord | EstablishmentRecord] = []

        def flush() -> None:
            outcome.lines_changed += store.upsert(batch)
            outcome.lines_applied += len(batch)
            batch.clear()
            if on_batch is not None:
                on_batch(raw.tell(), outcome)
            if should_stop():
                raise ImportInterrupted("the import was stopped; the batches applied are kept")

        for line_number, item in lines:
            outcome.lines_read += 1
            if line_number in undecodable:
                outcome.reject(Rejection(line_number, "the line is not valid UTF-8"))
            elif isinstance(item, Rejection):
                outcome.reject(item)
            else:
                batch.append(item)
                if len(batch) >= batch_size:
                    flush()
        flush()
    return outcome
