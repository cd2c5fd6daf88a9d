"""Receiving a Sirene stock upload and importing it in the background as an operation.

The upload is spooled to a file under the data directory, its header checked at once (a file that
is not a stock file is refused before any operation exists), then the import runs in a worker
thread, recording its progress in the operation after each committed batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from interops.registry.v1 import registry_pb2 as pb
from sqlalchemy import Engine

from registry.operation.store import OperationRecord, OperationStore
from registry.rcd.sirene_import import ImportInterrupted, ImportOutcome, import_stock
from registry.rcd.sirene_stock import StockFormatError, StockKind, read_stock
from server.rcd.messages import STOCK_KIND_MESSAGES, STOCK_KINDS
from server.rpc.errors import FieldViolation, InvalidArgument, ResourceExhausted, build_status
from server.rpc.telemetry import current_trace_id

KIND = "registry.import_stock"
log = logging.getLogger("interops.registry.import")


def _result(outcome: ImportOutcome) -> pb.ImportStockResult:
    return pb.ImportStockResult(
        kind=STOCK_KIND_MESSAGES[outcome.kind],
        lines_read=outcome.lines_read,
        lines_applied=outcome.lines_applied,
        lines_changed=outcome.lines_changed,
        lines_rejected=outcome.lines_rejected,
        rejected_lines=[
            pb.RejectedLine(line_number=r.line_number, reason=r.reason) for r in outcome.rejections
        ],
    )


def _first_line_kind(path: Path, expected: StockKind | None) -> StockKind:
    with path.open("rb") as raw:
        first = raw.readline().decode("utf-8", "replace")
    return read_stock([first], expected)[0]


# An import that recorded no progress for this long belongs to a process that died.
STALE_SECONDS = 120.0


class ImportJobs:
    """Uploads and background imports of stock files."""

    def __init__(
        self, engine: Engine, operations: OperationStore, upload_dir: Path, max_bytes: int
    ) -> None:
        self.engine = engine
        self.operations = operations
        self.upload_dir = upload_dir
        self.max_bytes = max_bytes
        self._stopping = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None

    def interrupted_by_restart(self) -> None:
        """Fails the operations a dead process left running (their thread is gone: no progress
        for STALE_SECONDS; a live node's import, on another node sharing the database, records
        its progress after every batch) and removes the uploads left half-received as long."""
        stale_before = time.time() - STALE_SECONDS
        if self.upload_dir.is_dir():
            for leftover in self.upload_dir.glob("*.csv"):
                with contextlib.suppress(FileNotFoundError):
                    if leftover.stat().st_mtime < stale_before:
                        leftover.unlink()
        for record in self.operations.unfinished(KIND, idle_seconds=STALE_SECONDS):
            status = build_status(
                grpc.StatusCode.ABORTED,
                "interrupted by a restart of the node; the batches applied are kept, "
                "upload the file again to finish",
                "OPERATION_INTERRUPTED",
            )
            self.operations.fail(record.id, status)

    async def receive(self, requests: AsyncIterator[pb.ImportStockRequest]) -> OperationRecord:
        """Takes an upload (header, then chunks) and starts its import; returns the operation."""
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument(
                "HEADER_FIRST",
                "the first message of an upload must be the header",
                violations=[FieldViolation("header", "must come first")],
            )
        header = first.header
        expected = STOCK_KINDS.get(header.kind)
        path = self.upload_dir / f"{uuid.uuid4().hex}.csv"
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        try:
            size = await self._spool(requests, path)
            try:
                kind = _first_line_kind(path, expected)
            except StockFormatError as error:
                raise InvalidArgument(
                    "NOT_A_STOCK_FILE",
                    f"the file cannot be imported: {error}",
                    violations=[FieldViolation("chunk", str(error))],
                ) from None
            record, created = await asyncio.to_thread(
                self.operations.create, KIND, "bytes", size, header.request_id
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if not created:
            path.unlink(missing_ok=True)
            return record
        task = asyncio.create_task(asyncio.to_thread(self._run, record.id, path, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return record

    async def _spool(self, requests: AsyncIterator[pb.ImportStockRequest], path: Path) -> int:
        size = 0
        with path.open("wb") as spool:
            async for request in requests:
                if request.WhichOneof("part") != "chunk":
                    raise InvalidArgument(
                        "HEADER_TWICE",
                        "only the first message of an upload is a header",
                        violations=[FieldViolation("header", "sent again after the first message")],
                    )
                size += len(request.chunk)
                if size > self.max_bytes:
                    raise ResourceExhausted(
                        "IMPORT_TOO_LARGE",
                        f"the file is larger than this node accepts ({self.max_bytes} bytes)",
                        metadata={"max_bytes": str(self.max_bytes)},
                    )
                spool.write(request.chunk)
        return size

    def _run(self, operation_id: str, path: Path, kind: StockKind) -> None:
        try:
            outcome = import_stock(
                self.engine,
                path,
                expected=kind,
                on_batch=lambda done, _: self.operations.progress(operation_id, done),
                should_stop=self._stopping.is_set,
            )
            self.operations.succeed(operation_id, _result(outcome), path.stat().st_size)
        except ImportInterrupted as error:
            status = build_status(grpc.StatusCode.ABORTED, str(error), "OPERATION_INTERRUPTED")
            self.operations.fail(operation_id, status)
        except StockFormatError as error:
            status = build_status(grpc.StatusCode.INVALID_ARGUMENT, str(error), "NOT_A_STOCK_FILE")
            self.operations.fail(operation_id, status)
        except Exception:
            trace_id = current_trace_id()
            log.exception("import %s failed (trace %s)", operation_id, trace_id)
            status = build_status(
                grpc.StatusCode.INTERNAL,
                f"the import failed; give this trace id to the operator: {trace_id}",
                "INTERNAL",
            )
            with contextlib.suppress(Exception):
                self.operations.fail(operation_id, status)
        finally:
            path.unlink(missing_ok=True)

    def start(self) -> None:
        """Looks for imports a dead process left (see interrupted_by_restart), now and every
        STALE_SECONDS / 2 until closed: a node that restarts before its own are stale fails
        them later."""
        self._watcher = asyncio.create_task(self._watch_interrupted(), name="interrupted-imports")

    async def _watch_interrupted(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.to_thread(self.interrupted_by_restart)
            except Exception:  # the database away: next time
                log.exception("cannot look for interrupted imports; retrying")
            await asyncio.to_thread(self._stopping.wait, STALE_SECONDS / 2)

    async def close(self) -> None:
        """Asks running imports to stop after their current batch, and waits for them."""
        self._stopping.set()
        if self._watcher is not None:
            await self._watcher
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
