"""Bulk import of a Sirene stock file into the RCD, in atomic batches of idempotent upserts.

Each batch is one transaction: it is applied whole or not at all, so an interrupted import leaves
only complete batches behind, and running the same file again applies nothing twice (unchanged
rows are left alone). Rejected lines are reported with their line number and reason and never stop
the file.
"""

from __future__ import annotations

import multiprocessing
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from sqlalchemy import Engine

from registry.rcd.records import CompanyRecord, EstablishmentRecord
from registry.rcd.sirene_columns import columnar_pass, copy_rows
from registry.rcd.sirene_stock import Rejection, StockKind, read_stock
from registry.rcd.store import PreparedRows, RcdStore, prepare_rows

MAX_LISTED_REJECTIONS = 1000
# Batches of this many lines: each is a transaction and a progress report. 20,000 lines are
# about 5 MB of a stock file, well under a second of work.
DEFAULT_BATCH_SIZE = 20_000
# From this size on, lines are parsed in worker processes while this one writes: parsing is
# pure Python and the slowest part. Smaller files are not worth starting the workers.
PARALLEL_FROM_BYTES = 32 * 1024 * 1024


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


def _committed(
    outcome: ImportOutcome,
    changed: int,
    applied: int,
    position: int,
    *,
    on_batch: Callable[[int, ImportOutcome], None] | None,
    should_stop: Callable[[], bool],
) -> None:
    """Counts a committed batch, reports progress, and stops here if asked to."""
    outcome.lines_changed += changed
    outcome.lines_applied += applied
    if on_batch is not None:
        on_batch(position, outcome)
    if should_stop():
        raise ImportInterrupted("the import was stopped; the batches applied are kept")


def _decoded(raw: Iterable[bytes], unreadable: dict[int, str]) -> Iterator[str]:
    # Decoding line by line lets one bad byte reject its line, not the file. A NUL character
    # cannot be stored in a text column of PostgreSQL.
    for number, read in enumerate(raw, start=1):
        line = read
        if b"\0" in line:
            unreadable[number] = "the line holds a NUL character"
            line = line.replace(b"\0", b"")
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            unreadable[number] = "the line is not valid UTF-8"
            yield line.decode("utf-8", "replace")


# Where str.splitlines() breaks a line besides "\n": a chunk holding none of them splits into
# the same lines as its bytes.
_OTHER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _decoded_chunk(raw_lines: list[bytes], unreadable: dict[int, str]) -> list[str]:
    """The lines of a chunk as text: decoded whole when it is clean UTF-8 without NUL (the
    common case, a third of the cost), else line by line (_decoded)."""
    joined = b"".join(raw_lines)
    if b"\0" not in joined:
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            lines = text.splitlines(keepends=True)
            if len(lines) == len(raw_lines) and not _OTHER_BREAKS.search(text):
                return lines
    return list(_decoded(raw_lines, unreadable))


def import_stock(
    engine: Engine,
    path: Path,
    *,
    expected: StockKind | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int, ImportOutcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    workers: int | None = None,
) -> ImportOutcome:
    """Imports a stock file; calls on_batch(bytes read, outcome) after each committed batch.

    Raises StockFormatError before applying anything when the file is not a stock file, and
    ImportInterrupted between batches once should_stop() is true. `workers` parse processes
    are used (by default: two for a large file on a machine with several cores, none
    otherwise); with workers, a CSV record must fit on one line, as in INSEE's files (a record
    split across lines is rejected, never half-read).
    """
    if workers is None:
        large = path.stat().st_size >= PARALLEL_FROM_BYTES
        workers = 2 if large and (multiprocessing.cpu_count() or 1) > 1 else 0
    if workers:
        return _import_in_parallel(
            engine, path, expected=expected, batch_size=batch_size, on_batch=on_batch,
            should_stop=should_stop, workers=workers,
        )  # fmt: skip
    return _import_here(
        engine, path, expected=expected, batch_size=batch_size, on_batch=on_batch,
        should_stop=should_stop,
    )  # fmt: skip


def _import_here(
    engine: Engine,
    path: Path,
    *,
    expected: StockKind | None,
    batch_size: int,
    on_batch: Callable[[int, ImportOutcome], None] | None,
    should_stop: Callable[[], bool],
) -> ImportOutcome:
    store = RcdStore(engine)
    unreadable: dict[int, str] = {}
    with path.open("rb") as raw:
        kind, lines = read_stock(_decoded(raw, unreadable), expected)
        outcome = ImportOutcome(kind)
        batch: list[CompanyRecord | EstablishmentRecord] = []

        def flush() -> None:
            changed, applied = store.upsert(batch), len(batch)
            batch.clear()
            _committed(
                outcome, changed, applied, raw.tell(), on_batch=on_batch, should_stop=should_stop
            )

        for line_number, item in lines:
            outcome.lines_read += 1
            if line_number in unreadable:
                outcome.reject(Rejection(line_number, unreadable.pop(line_number)))
            elif isinstance(item, Rejection):
                outcome.reject(item)
            else:
                batch.append(item)
                if len(batch) >= batch_size:
                    flush()
        flush()
    return outcome


ParsedChunk = tuple[PreparedRows, list[Rejection], int]
Record = CompanyRecord | EstablishmentRecord


def read_chunk(
    header: str, kind: StockKind, first_line: int, raw_lines: Sequence[bytes]
) -> tuple[list[tuple[int, Record]], list[Rejection], int]:
    """The Python reader over a chunk of data lines, the first of which is line `first_line` of
    the file: its records with their places in the chunk, its rejections, and the count of
    lines read."""
    unreadable: dict[int, str] = {}
    text = _decoded_chunk(list(raw_lines), unreadable)  # numbers from 1 within the chunk
    _, items = read_stock([header, *text], kind)
    records: list[tuple[int, Record]] = []
    rejections: list[Rejection] = []
    read = 0
    for number, item in items:  # the header is line 1, the chunk's first line is 2
        read += 1
        if number - 1 in unreadable:
            rejections.append(Rejection(first_line + number - 2, unreadable[number - 1]))
        elif isinstance(item, Rejection):
            rejections.append(Rejection(first_line + number - 2, item.reason))
        else:
            records.append((number - 2, item))
    return records, rejections, read


def parse_chunk(
    header: str, kind: str, first_line: int, raw_lines: list[bytes], *, dialect: str
) -> ParsedChunk:
    """In a worker: the rows, rejections and count of lines read of a chunk of data lines,
    the first of which is line `first_line` of the file, prepared for a database of `dialect`.

    Establishments bound for PostgreSQL take the columnar path (sirene_columns) for the lines
    it can vouch for, and the Python reader for the others: the same outcome, faster.
    """
    stock_kind = StockKind(kind)
    if dialect == "postgresql" and stock_kind is StockKind.ESTABLISHMENTS:
        columnar = columnar_pass(header, raw_lines)
        if columnar is not None:
            others = columnar.others
            found, rejections, read = read_chunk(
                header, stock_kind, 0, [raw_lines[place] for place in others]
            )
            rejections = [
                Rejection(first_line + others[r.line_number], r.reason) for r in rejections
            ]
            establishments = [
                (others[place], record)
                for place, record in found
                if isinstance(record, EstablishmentRecord)
            ]
            rows = copy_rows(columnar, establishments)
            return (rows if len(rows) else []), rejections, read + len(columnar.places)
    found, rejections, read = read_chunk(header, stock_kind, first_line, raw_lines)
    return prepare_rows([record for _, record in found], dialect), rejections, read


def _import_in_parallel(
    engine: Engine,
    path: Path,
    *,
    expected: StockKind | None,
    batch_size: int,
    on_batch: Callable[[int, ImportOutcome], None] | None,
    should_stop: Callable[[], bool],
    workers: int,
) -> ImportOutcome:
    store = RcdStore(engine)
    with path.open("rb") as raw:
        header = raw.readline().decode("utf-8", "replace")
        kind, _ = read_stock([header], expected)
        outcome = ImportOutcome(kind)
        # "spawn": the import may run inside the gRPC server, which must not be forked.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(workers, mp_context=context)
        pending: deque[tuple[Future[ParsedChunk], int]] = deque()

        def apply_oldest() -> None:
            parsed, position = pending.popleft()
            parsed_rows, rejections, read = parsed.result()
            outcome.lines_read += read
            for rejection in rejections:
                outcome.reject(rejection)
            changed, applied = store.upsert_prepared(parsed_rows), len(parsed_rows)
            _committed(
                outcome, changed, applied, position, on_batch=on_batch, should_stop=should_stop
            )

        def submit(chunk: list[bytes], first_line: int) -> None:
            future = pool.submit(
                parse_chunk, header, kind.value, first_line, chunk, dialect=engine.dialect.name
            )
            pending.append((future, raw.tell()))

        try:
            first_line = 2
            while chunk := list(islice(raw, batch_size)):
                submit(chunk, first_line)
                first_line += len(chunk)
                while len(pending) > 2 * workers:  # bounded read-ahead
                    apply_oldest()
            while pending:
                apply_oldest()
        finally:
            pool.shutdown(cancel_futures=True)
    return outcome
