"""Creditors' mandate extractions in the background: each written on a small executor of its
own (a flood of extractions then waits its turn rather than taking the threads every other
call's database work runs on), one running at a time per creditor (registry/mandate/store.py
`claim_extraction`), their files deleted RETENTION_DAYS after they were asked for, and those a
dead node left unfinished failed at the next node's start (and the unfinished files on disk
it left removed at the hourly purge) (those waiting for a worker or running
on a live node are marked as looked after every STALE_SECONDS / 5, so that they are not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.rpc import code_pb2, status_pb2
from interops.mandate.v1 import mandate_pb2 as pb

from registry.kernel.blob_store import PARTIAL_AFTER_SECONDS, BlobStore
from registry.kernel.clock import now_ms
from registry.kernel.sealing import SealedWriter
from registry.mandate.store import MandateStore
from registry.operation.store import OperationState, OperationStore
from server.background_loop import BackgroundLoop
from server.rpc.errors import build_status

log = logging.getLogger("interops.mandate")

EXTRACT_KIND = "mandate.extract"
# Extractions written at the same time by one node (each holds a thread and a database cursor).
EXTRACT_WORKERS = 2
# An extraction file is deleted this many days after it was asked for (README: Mandates).
RETENTION_DAYS = 7
# An unfinished extraction that recorded nothing for this long belongs to a node that died (a
# live one records its progress after every EXTRACT_BATCH mandates, in well under a minute).
STALE_SECONDS = 300.0
# How often the retention is applied.
PURGE_SECONDS = 3600.0


def file_name(operation_id: str) -> str:
    """The blob of an extraction's sealed file."""
    return f"extractions/{operation_id}.csv.sealed"


class _Purge(BackgroundLoop):
    name = "mandate-extraction-purge"

    def __init__(self, jobs: MandateExtractions) -> None:
        super().__init__(PURGE_SECONDS)
        self.jobs = jobs

    async def round(self) -> None:
        try:
            await asyncio.to_thread(self.jobs.purge)
        except Exception:
            log.exception("purging mandate extractions failed")


class _KeepQueuedAlive(BackgroundLoop):
    """Marks this node's extractions (waiting for a worker, or running) as looked after, well
    within STALE_SECONDS: another node starting must not fail them for a dead node's."""

    name = "mandate-extraction-queue"

    def __init__(self, jobs: MandateExtractions) -> None:
        super().__init__(STALE_SECONDS / 5)
        self.jobs = jobs

    async def round(self) -> None:
        try:
            await asyncio.to_thread(self.jobs.touch_queued)
        except Exception:  # the database away: next round
            log.warning("marking the queued mandate extractions failed; retrying")


class MandateExtractions:
    """Runs, recovers and purges extractions."""

    def __init__(
        self, store: MandateStore, operations: OperationStore, blobs: BlobStore, data_key: bytes
    ) -> None:
        self.store = store
        self.operations = operations
        self.blobs = blobs
        self.data_key = data_key
        self.executor = ThreadPoolExecutor(EXTRACT_WORKERS, thread_name_prefix="mandate-extract")
        self._purge = _Purge(self)
        self._keep_alive = _KeepQueuedAlive(self)
        self._tasks: set[asyncio.Future[None]] = set()
        # Extractions submitted and not started yet (their worker busy with others).
        self._queued: set[str] = set()
        self._queue_lock = threading.Lock()

    async def start(self) -> None:
        """Fails what a dead node left unfinished, then purges now and every PURGE_SECONDS."""
        await asyncio.to_thread(self.interrupted_by_restart)
        await self._purge.start()
        await self._keep_alive.start()

    async def stop(self) -> None:
        """Stops the purge; extractions under way end with the process (the next start fails
        them)."""
        await self._purge.stop()
        await self._keep_alive.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, operation_id: str, creditor: str) -> None:
        """Writes the creditor's file in the background."""
        with self._queue_lock:
            self._queued.add(operation_id)
        task = asyncio.get_running_loop().run_in_executor(
            self.executor, self.extract, operation_id, creditor
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def extract(self, operation_id: str, creditor: str) -> None:
        """Writes the creditor's file, sealed, recording progress; fails the operation on an
        error (its message says only what the operator needs)."""
        found = self.operations.get(operation_id)
        if found is None or found.state != OperationState.PENDING:  # failed meanwhile
            with self._queue_lock:
                self._queued.discard(operation_id)
            return
        try:
            with SealedWriter(self.blobs.writer(file_name(operation_id)), self.data_key) as out:
                count = 0

                def progress(done: int) -> None:
                    nonlocal count
                    count = done
                    self.operations.progress(operation_id, done)

                for piece in self.store.extract(creditor, progress):
                    out.write(piece)
            result = pb.ExtractMandatesResult(creditor=creditor, mandates=count, size=out.size)
            self.operations.succeed(operation_id, result, count)
            log.info("extraction %s: %d mandates of %s", operation_id, count, creditor)
        except Exception:
            log.exception("extraction %s failed", operation_id)
            self.operations.fail(operation_id, status_pb2.Status(
                code=code_pb2.INTERNAL, message="the extraction failed; see the node's log"
            ))  # fmt: skip
        finally:
            self.store.release_extraction(operation_id)
            with self._queue_lock:
                self._queued.discard(operation_id)

    def touch_queued(self) -> None:
        """Marks this node's extractions, waiting for a worker or running, as looked after."""
        with self._queue_lock:
            queued = sorted(self._queued)
        self.operations.touch(queued)

    def interrupted_by_restart(self, stale_seconds: float = STALE_SECONDS) -> int:
        """Fails the extractions left unfinished with no progress for `stale_seconds` (their
        node died; a live one records progress more often), freeing their creditor's turn."""
        stale = self.operations.unfinished(EXTRACT_KIND, idle_seconds=stale_seconds)
        interrupted = build_status(
            grpc.StatusCode.ABORTED, "interrupted by a restart of the node; ask again",
            "OPERATION_INTERRUPTED",
        )  # fmt: skip
        with self._queue_lock:
            ours = set(self._queued)
        failed = 0
        for record in stale:
            # Failed only if still idle now (its node may have recorded progress meanwhile).
            if record.id not in ours and self.operations.fail_if_idle(
                record.id, interrupted, stale_seconds
            ):
                self.store.release_extraction(record.id)
                failed += 1
        if failed:
            log.info("%d mandate extractions interrupted by a restart failed", failed)
        return failed

    def purge(self, now: int | None = None) -> int:
        """Deletes the files of extractions asked for more than RETENTION_DAYS ago, and what
        writers killed mid-write left unfinished (on disk); returns how many extractions."""
        swept = self.blobs.sweep(time.time() - PARTIAL_AFTER_SECONDS)
        if swept:
            log.info("removed %d unfinished mandate extraction files left by a stopped writer",
                     swept)  # fmt: skip
        before = (now if now is not None else now_ms()) - RETENTION_DAYS * 86_400_000
        purged = self.store.extractions_to_purge(before)
        for operation_id in purged:
            with contextlib.suppress(FileNotFoundError):
                self.blobs.delete(file_name(operation_id))
            self.store.mark_purged(operation_id)
        if purged:
            log.info("%d mandate extraction files past their retention deleted", len(purged))
        return len(purged)
