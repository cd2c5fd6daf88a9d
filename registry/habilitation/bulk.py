"""Bulk habilitation files waiting their turn, and the applying of one, line by line.

Files are kept in the database in the order they were received (bulk_files.position) and applied
one after the other. Each act is applied in its own transaction through the habilitation rules
(registry/habilitation/store.py) by the file's author; a line refused by a rule is reported and
the next one applied. Acts are idempotent, so a file applied again after a crash changes nothing
more.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from registry.habilitation.bulk_file import BadLine, BulkLine, read_lines
from registry.habilitation.schema import bulk_files
from registry.habilitation.store import HabilitationRefused, HabilitationStore
from registry.kernel.clock import now_ms
from registry.kernel.database import reading


class BulkFileState(enum.StrEnum):
    """Where a queued file stands (its operation tells the caller); stored as its name."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"


# Refused lines kept in a report; the count goes on.
MAX_REPORTED = 1000


@dataclass
class BulkReport:
    """What a file did, line by line."""

    lines_read: int = 0
    lines_changed: int = 0
    rejected: list[BadLine] = field(default_factory=list)
    lines_rejected: int = 0
    warnings: list[str] = field(default_factory=list)

    def reject(self, line: BadLine) -> None:
        """Counts a refused line and keeps it while there is room."""
        self.lines_rejected += 1
        if len(self.rejected) < MAX_REPORTED:
            self.rejected.append(line)

    @property
    def summary(self) -> str:
        """One line for the queue's record."""
        return (f"{self.lines_read} read, {self.lines_changed} changed, "
                f"{self.lines_rejected} rejected")  # fmt: skip


@dataclass(frozen=True, slots=True)
class BulkFile:
    """A queued file."""

    operation_id: str
    siren: str
    author: int
    content: bytes


def apply_line(store: HabilitationStore, author: int, line: BulkLine) -> tuple[bool, str]:
    """Applies one act as `author`; (changed, warning). Raises HabilitationRefused."""
    if line.action == "CREATE_PORTFOLIO":
        try:
            store.create_portfolio(author, line.portfolio)
        except HabilitationRefused as refused:
            if refused.reason != "PORTFOLIO_EXISTS":
                raise
            return False, ""  # there already: nothing to change
        return True, ""
    if line.action in ("GRANT", "REVOKE"):
        act = store.grant if line.action == "GRANT" else store.revoke
        return act(author, line.account, line.siret, line.service), ""
    add = line.action.startswith("ADD_")
    if line.action.endswith("_ESTABLISHMENT"):
        changed, warning = store.change_portfolio(author, line.portfolio, add=add,
                                                  sirets=(line.siret,))  # fmt: skip
    else:
        changed, warning = store.change_portfolio(author, line.portfolio, add=add,
                                                  services=(line.service,))  # fmt: skip
    return bool(changed), warning


def apply_file(
    store: HabilitationStore,
    queued: BulkFile,
    on_progress: Callable[[int], None] = lambda _: None,
    every: int = 500,
) -> BulkReport:
    """Applies a file's acts in order; `on_progress(lines)` every `every` lines."""
    report = BulkReport()
    for line in read_lines(queued.content):
        if isinstance(line, BadLine):
            report.reject(line)
            if line.reason == "MALFORMED_FILE":
                break
            report.lines_read += 1
            continue
        report.lines_read += 1
        try:
            changed, warning = apply_line(store, queued.author, line)
        except HabilitationRefused as refused:
            report.reject(BadLine(line.number, refused.reason, refused.message))
        else:
            report.lines_changed += changed
            if warning and warning not in report.warnings:
                report.warnings.append(warning)
        if report.lines_read % every == 0:
            on_progress(report.lines_read)
    return report


# How long a node's claim on a file holds unless renewed (each `every` lines applied).
CLAIM_MS = 15_000


class BulkQueue:
    """The files waiting, in the order received."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(self, operation_id: str, siren: str, author: int, content: bytes) -> None:
        """Queues a file after every file received before it."""
        for _ in range(5):  # two files received at once may take the same position
            try:
                with self.engine.begin() as connection:
                    last = connection.execute(select(func.max(bulk_files.c.position))).scalar()
                    connection.execute(insert(bulk_files).values(
                        operation_id=operation_id, position=(last or 0) + 1, siren=siren,
                        author=author, content=content, state=BulkFileState.PENDING, report="",
                    ))  # fmt: skip
                return
            except IntegrityError:
                continue
        raise RuntimeError("could not queue the bulk file: too many files received at once")

    def siren_of(self, operation_id: str) -> str | None:
        """The company of a queued file's operation, or None."""
        with reading(self.engine) as connection:
            found = connection.execute(
                select(bulk_files.c.siren).where(bulk_files.c.operation_id == operation_id)
            ).scalar()
        return None if found is None else str(found)

    def take_next(self, node: str = "") -> BulkFile | None:
        """Claims for `node` the oldest file not done, unless a file is being applied under a
        live claim (files are applied one after the other, whichever node applies them); a
        RUNNING file whose claim ran out (its node died) is taken again. None: nothing to take
        now, or another node's claim won."""
        moment = now_ms()
        live = (bulk_files.c.state == BulkFileState.RUNNING) & (bulk_files.c.claimed_until > moment)
        with self.engine.begin() as connection:
            if connection.execute(select(bulk_files.c.operation_id).where(live)).first():
                return None
            row = connection.execute(
                select(bulk_files.c.operation_id, bulk_files.c.siren, bulk_files.c.author,
                       bulk_files.c.content, bulk_files.c.state, bulk_files.c.claimed_until)
                .where(bulk_files.c.state != BulkFileState.DONE)
                .order_by(bulk_files.c.position)
                .limit(1)
            ).first()  # fmt: skip
            if row is None:
                return None
            claimed = connection.execute(
                update(bulk_files)
                .where(bulk_files.c.operation_id == row.operation_id,
                       bulk_files.c.state == row.state,
                       bulk_files.c.claimed_until == row.claimed_until)
                .values(state=BulkFileState.RUNNING, claimed_by=node,
                        claimed_until=moment + CLAIM_MS)
            ).rowcount  # fmt: skip
        if not claimed:
            return None
        return BulkFile(row.operation_id, row.siren, row.author, bytes(row.content))

    def renew(self, operation_id: str, node: str = "") -> None:
        """Keeps `node`'s claim on a file it is still applying."""
        with self.engine.begin() as connection:
            connection.execute(
                update(bulk_files)
                .where(bulk_files.c.operation_id == operation_id,
                       bulk_files.c.state == BulkFileState.RUNNING,
                       bulk_files.c.claimed_by == node)
                .values(claimed_until=now_ms() + CLAIM_MS)
            )  # fmt: skip

    def finish(self, operation_id: str, report: BulkReport) -> None:
        """Marks a file done with its report's summary."""
        with self.engine.begin() as connection:
            connection.execute(
                update(bulk_files)
                .where(bulk_files.c.operation_id == operation_id)
                .values(state=BulkFileState.DONE, report=report.summary)
            )
