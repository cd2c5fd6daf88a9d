"""The worker that applies queued bulk habilitation files one after the other, in the order
received, recording each file's progress and line-by-line report in its operation."""

from __future__ import annotations

import asyncio
import logging

import grpc
from interops.habilitation.v1 import habilitation_pb2 as pb

from registry.habilitation.bulk import BulkFile, BulkQueue, BulkReport, apply_file
from registry.habilitation.store import HabilitationStore
from registry.operation.store import OperationStore
from server.background_loop import BackgroundLoop
from server.rpc.errors import build_status

KIND = "habilitation.import"
log = logging.getLogger("interops.habilitation.bulk")


def result_message(report: BulkReport) -> pb.ImportHabilitationsResult:
    """The operation's result."""
    return pb.ImportHabilitationsResult(
        lines_read=report.lines_read,
        lines_changed=report.lines_changed,
        lines_rejected=report.lines_rejected,
        rejected_lines=[pb.LineReport(line_number=bad.number, reason=bad.reason,
                                      message=bad.message)
                        for bad in report.rejected],
        warnings=report.warnings,
    )  # fmt: skip


class BulkWorker(BackgroundLoop):
    """Takes the oldest waiting file, applies it, and goes on until none is left."""

    name = "habilitation-bulk"

    def __init__(
        self,
        queue: BulkQueue,
        store: HabilitationStore,
        operations: OperationStore,
        poll_seconds: float,
        node: str = "node",
    ) -> None:
        self.node = node
        self.queue = queue
        self.store = store
        self.operations = operations
        super().__init__(poll_seconds)

    async def round(self) -> None:
        """Applies the waiting files, oldest first."""
        try:
            while (queued := await asyncio.to_thread(self.queue.take_next, self.node)) is not None:
                await asyncio.to_thread(self.apply, queued)
        except Exception:  # the database away: try again after the poll interval
            log.exception("bulk habilitation files: cannot go on; retrying")

    def apply(self, queued: BulkFile) -> None:
        """Applies one file and records its outcome in its operation."""
        operation = queued.operation_id
        self.operations.progress(operation, 0)

        def progress(done: int) -> None:
            self.operations.progress(operation, done)
            self.queue.renew(operation, self.node)

        try:
            report = apply_file(self.store, queued, progress)
        except Exception:
            log.exception("bulk file %s failed", operation)
            status = build_status(grpc.StatusCode.INTERNAL,
                                  "the file could not be applied; acts applied are kept",
                                  "INTERNAL")  # fmt: skip
            self.operations.fail(operation, status)
            self.queue.finish(operation, BulkReport())
            return
        self.queue.finish(operation, report)
        self.operations.succeed(operation, result_message(report), report.lines_read)
