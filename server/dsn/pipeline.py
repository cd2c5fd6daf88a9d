"""After a deposit's AEE: the deposit's reading (registry/dsn/deposit_reading.py: validation's
fast path, proven equal to the one walk, then one walk heard by relations and routing, its clean
individuals taken whole from validation's plans, proven equal too, so no step can see the file
otherwise than another), in a worker process for a deposit that fits in
memory (server/dsn/reading_pool.py: the readings take a core of their own). A deposit of at
most WHOLE_BYTES was read so already as it arrived, on the walk of its scan
(registry/dsn/scan.py `scan_and_read_whole`): the node keeps that reading (`keep`, at most
KEPT_READINGS, KEPT_BYTES and KEPT_SECONDS) and takes it for that deposit and that plaintext
only, else it reads the deposit again (taken by another node, or the node restarted
meanwhile); its claims take those deposits first, after the events and for half a batch at
most. Then validation's outcome (its CCO or BAN is the first return; a conformant file's
declared links and employments are recorded with it, in its transaction up to
RELATIONS_AT_ONCE of them), then, for a conformant file, routing's
(each organism's share sealed to the organism's own encryption key and stored, then the outbox
rows and ROUTED in one transaction). The establishments read must be those the deposit's rights
were checked on.

Each step reads the deposit's state from the database and moves it on in one transaction, so a
crash at any point only makes the step run again on restart: shares are rewritten whole under
the same names, and the outbox rows are written at most once. Events (natures 04, 05, 07) are
taken before any monthly declaration waiting. A node works on up to PARALLEL of its claimed
deposits at once, so that one's database work and sealing wait while another is read. Two
deposits revealing the same new relation at once (on one node or two) both insert it: the one
refused records its validation again, finding the relation there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, NamedTuple

from opentelemetry.trace import Tracer
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from clients.tracing import context_of
from registry.dsn.deposit_reading import DepositReading, ReadShare, read_deposit
from registry.dsn.deposit_store import (
    Claimed,
    DepositFiles,
    DepositRecord,
    DepositState,
    DepositStore,
    NoEncryptionKey,
    RoutedShare,
    ShareFile,
    Validated,
    delivery_id,
)
from registry.dsn.entitlement import OrganismRules
from registry.dsn.individual_segments import SharedPlans
from registry.dsn.revealed_relations import Relations
from registry.dsn.routing import Router
from registry.dsn.validation import Report
from registry.kernel.blob_store import PARTIAL_AFTER_SECONDS
from registry.kernel.clock import now_ms
from registry.relations.store import BATCH as RELATIONS_BATCH
from registry.relations.store import Link, RelationsStore
from server.background_loop import BackgroundLoop
from server.dsn.reading_pool import WHOLE_BYTES, default_workers, read_in_worker, warm
from token_suite.directory import KeyEntry

log = logging.getLogger("interops.dsn")


class _Dropped:
    """Where the share of an organism without an encryption key goes while the deposit is
    read: nowhere (the deposit is routed on a later round, once it has a key)."""

    def write(self, data: bytes) -> int:
        return len(data)


# How many deposits a round claims (for INTEROPS_CLAIM_SECONDS, renewed every third of it while
# the round lasts: a node killed while working on one leaves it to another once its claim runs
# out). A deposit whose processing failed waits FAILED_WAIT_MS, one with an organism that has no
# encryption key yet KEYLESS_WAIT_MS, each doubled with every claim (at most an hour).
CLAIM_BATCH = 32
FAILED_WAIT_MS = 5_000
KEYLESS_WAIT_MS = 30_000
# How often a node looks for deposit files past retention. At its start, it removes the files
# writers killed mid-write left unfinished (last written PARTIAL_AFTER_SECONDS ago).
PURGE_EVERY_SECONDS = 3600.0
# How many of its claimed deposits a node works on at once (one of at most WHOLE_BYTES is read
# whole in a worker process).
PARALLEL = 6
# How many times a validation's recording is tried when another transaction got in its way (a
# relation inserted meanwhile; PostgreSQL's deadlock and serialization failures).
RECORD_ATTEMPTS = 3
_RETRIED_STATES = {"40P01", "40001"}
# A file revealing more links and employments than this records them by batches before its CCO,
# not in its CCO's transaction (registry/relations/store.py's batch).
RELATIONS_AT_ONCE = RELATIONS_BATCH
# How long the pipeline seals to an organism's encryption key as it read it (within a round).
KEY_SECONDS = 2.0
# The readings done as deposits arrived (`keep`) that a node holds for its pipeline at most,
# the bytes they hold at most (their shares, and as much again as their deposit for its report
# and relations), and how long one waits at most (then dropped: its deposit is read again, as
# one taken by another node is). When they are full, a deposit arriving is only scanned (`room`),
# and read once, by the pipeline: never read at arrival to be dropped before its turn (deposits
# arriving faster than the pipeline routes them would otherwise all be read twice).
KEPT_READINGS = 64
KEPT_BYTES = 64 << 20
KEPT_SECONDS = 120.0


class _Kept(NamedTuple):
    """A reading done as its deposit arrived, waiting for the pipeline (`DsnPipeline.keep`)."""

    sha256: bytes  # the plaintext's it was done on
    reading: DepositReading
    held: int  # bytes it holds, as counted against KEPT_BYTES
    at: float  # when it was kept (time.monotonic())


def _pipeline_threads() -> ThreadPoolExecutor:
    """The threads a pipeline processes its deposits on (started as they are needed)."""
    return ThreadPoolExecutor(PARALLEL, thread_name_prefix="dsn-pipeline")


class DsnPipeline(BackgroundLoop):
    """Validates and routes deposits in a worker thread, woken by `wake` or every poll."""

    name = "dsn-pipeline"

    def __init__(
        self,
        store: DepositStore,
        files: DepositFiles,
        rules: dict[str, OrganismRules],
        poll_seconds: float,
        tracer: Tracer,
        *,
        relations: RelationsStore,
        node: str = "node",
        retention_days: float = 0.0,
        reading_workers: int | None = None,
        claim_seconds: float = 60.0,
    ) -> None:
        if relations.engine is not store.engine:
            raise ValueError("the relations and the deposits are recorded in one transaction")
        self.claim_ms = max(1, int(claim_seconds * 1000))
        self.relations = relations
        self.node = node
        self.retention_ms = int(retention_days * 86_400_000)
        self._next_purge = 0.0
        self._sweeping: asyncio.Task[None] | None = None
        self.tracer = tracer
        self.store = store
        self.files = files
        self.router = Router(rules.values())
        # Worker processes reading deposits (0: read in this process), and this process's
        # plans of the validation's fast path, kept from one deposit to the next.
        self.reading_workers = default_workers() if reading_workers is None else reading_workers
        self.plans = SharedPlans()
        # The organisms' encryption keys as found at most KEY_SECONDS ago (a deposit concerns
        # four to six organisms: a lookup each per round, not per share; a key retired is no
        # longer sealed to after that).
        self._round_keys: dict[str, tuple[float, KeyEntry | None]] = {}
        # Deposit id -> its reading as kept, oldest first; the bytes of all.
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._kept_bytes = 0
        self._kept_lock = threading.Lock()
        # Its own threads: the calls' blocking work has the node's (server/node.py IO_THREADS),
        # never waiting behind deposits.
        self._threads = _pipeline_threads()
        super().__init__(poll_seconds)

    async def start(self) -> None:
        """Starts working (the reading workers first, before the first deposit)."""
        if self.reading_workers:
            await asyncio.to_thread(warm, self.reading_workers)
        await super().start()

    async def stop(self) -> None:
        """Stops after the step under way (a deposit being processed finishes on its thread);
        its threads end then, and a start after it has fresh ones."""
        await super().stop()
        self._threads.shutdown(wait=False)
        self._threads = _pipeline_threads()

    def room(self) -> bool:
        """Whether a reading done now would be kept (a deposit arriving is read at once only
        then; else only scanned)."""
        with self._kept_lock:
            self._drop_kept()
            return len(self._kept) < KEPT_READINGS and self._kept_bytes < KEPT_BYTES

    def keep(self, deposit_id: str, sha256: bytes, size: int, reading: DepositReading) -> bool:
        """Holds the reading of a deposit taken, done as it arrived (registry/dsn/scan.py
        `scan_and_read_whole`), for this node's pipeline to use instead of reading the deposit
        again; `sha256` and `size` are its plaintext's (used only if the deposit's digest is
        the same). False, and not kept, past the bounds: those kept earlier are claimed first."""
        held = size + sum(len(share.data or b"") for share in reading.shares)
        with self._kept_lock:
            self._drop_kept()
            self._pop_kept(deposit_id)
            if len(self._kept) >= KEPT_READINGS or self._kept_bytes + held > KEPT_BYTES:
                return False
            self._kept[deposit_id] = _Kept(sha256, reading, held, time.monotonic())
            self._kept_bytes += held
            return True

    def _pop_kept(self, deposit_id: str) -> _Kept | None:
        """Takes a deposit's kept reading out, if any (the lock held)."""
        kept = self._kept.pop(deposit_id, None)
        if kept is not None:
            self._kept_bytes -= kept.held
        return kept

    def _drop_kept(self) -> None:
        """Drops the kept readings older than KEPT_SECONDS (the lock held)."""
        too_old = time.monotonic() - KEPT_SECONDS
        while self._kept and next(iter(self._kept.values())).at < too_old:
            self._kept_bytes -= self._kept.popitem(last=False)[1].held

    def forget(self, deposit_ids: Iterable[str]) -> None:
        """Drops the kept readings of these deposits (no longer this node's to route)."""
        with self._kept_lock:
            for deposit_id in deposit_ids:
                self._pop_kept(deposit_id)

    def _kept_ids(self) -> list[str]:
        """The deposits whose readings this node holds (its claims prefer them)."""
        with self._kept_lock:
            return list(self._kept)

    def _kept_reading(self, record: DepositRecord) -> DepositReading | None:
        with self._kept_lock:
            self._drop_kept()
            kept = self._pop_kept(record.id)
        if kept is None or kept.sha256 != record.sha256:
            return None
        return kept.reading

    def _encryption_key(self, organism: str) -> KeyEntry | None:
        found = self._round_keys.get(organism)
        if found is None or time.monotonic() - found[0] > KEY_SECONDS:
            found = (time.monotonic(), self.files.encryption_key(organism))
            self._round_keys[organism] = found
        return found[1]

    async def round(self) -> None:
        """Moves on the deposits left unfinished (received, or a previous run's) that this node
        claims: nodes sharing the database each take their own."""
        try:
            claimed = await asyncio.to_thread(
                self.store.claim, self.node, CLAIM_BATCH, self.claim_ms, self._kept_ids()
            )
        except Exception:  # the database away: try again after the poll interval
            log.exception("the DSN pipeline cannot read its work; retrying")
            claimed = Claimed([], [])
        work = claimed.ids
        self.forget(claimed.unclaimable)  # finished, or another node's to read
        slots = asyncio.Semaphore(PARALLEL)
        held = set(work)
        self._round_keys.clear()  # each round reads the organisms' keys afresh

        loop = asyncio.get_running_loop()

        async def one(deposit_id: str) -> None:
            async with slots:
                try:
                    await loop.run_in_executor(self._threads, self.process, deposit_id)
                    held.discard(deposit_id)
                except Exception:  # one deposit failing must not hold up the others
                    held.discard(deposit_id)
                    wait = await asyncio.to_thread(self.store.retry_later, deposit_id, self.node,
                                                   FAILED_WAIT_MS)  # fmt: skip
                    log.exception("deposit %s: processing failed; tried again in %d s",
                                  deposit_id, wait // 1000)  # fmt: skip

        renewing = asyncio.create_task(self._renew(held))
        try:
            await asyncio.gather(*(one(deposit_id) for deposit_id in work))
        finally:
            renewing.cancel()
        if len(work) == CLAIM_BATCH:  # more are waiting
            self.wake()
        if self._sweeping is None:  # once a process: what a killed one left half-written
            self._sweeping = asyncio.create_task(self._sweep(), name="dsn-sweep")
        if self.retention_ms and time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
            try:
                await asyncio.to_thread(self.purge, now_ms() - self.retention_ms)
            except Exception:  # the database or the disk away: next time
                log.exception("purging the DSN files past retention failed; retrying")

    async def _sweep(self) -> None:
        """Removes the files a writer killed mid-write left (on disk; at start, beside the
        rounds: the walk of a large tree does not hold up deposits)."""
        try:
            swept = await asyncio.to_thread(
                self.files.blobs.sweep, time.time() - PARTIAL_AFTER_SECONDS
            )
        except Exception:  # the disk away: at the next start
            log.exception("sweeping unfinished DSN files failed")
            return
        if swept:
            log.info("removed %d unfinished DSN files left by a stopped writer", swept)

    async def _renew(self, held: set[str]) -> None:
        """Keeps this round's unfinished claims alive, every third of their lease, however long
        a deposit takes (a dead node stops renewing: its deposits go to another node)."""
        while held:
            await asyncio.sleep(self.claim_ms / 3000)
            try:
                await asyncio.to_thread(self.store.renew, sorted(held), self.node, self.claim_ms)
            except Exception:  # the database away: the claims may run out; nothing is lost
                log.warning("renewing the DSN pipeline's claims failed; retrying")

    def purge(self, finished_before: int) -> int:
        """Deletes the sealed files and shares of the deposits that owe nothing (rejected, or
        every delivery acknowledged) and were finished before `finished_before`; returns how
        many deposits. Files first, then the mark: a purge cut short is done again."""
        done = 0
        while found := self.store.purgeable(finished_before, 500):
            for deposit_id, shares in found:
                self.files.delete(self.files.deposit(deposit_id))
                for delivery in shares:
                    self.files.delete(self.files.share(delivery))
                self.store.mark_purged(deposit_id)
            done += len(found)
        if done:
            log.info("purged the files of %d deposits past retention", done)
        return done

    def process(self, deposit_id: str) -> None:
        """Reads one deposit once (validation, relations and routing see the same reading) and
        moves it on as far as it goes."""
        record = self.store.get(deposit_id)
        if record is None or record.state not in (DepositState.RECEIVED, DepositState.VALIDATED):
            self.forget([deposit_id])
            return
        # The deposit's own trace: these spans join the call that deposited it.
        parent = context_of(record.trace_parent)
        attributes = {"interops.deposit_id": deposit_id}
        with self.tracer.start_as_current_span("dsn.validate", parent, attributes=attributes):
            files: dict[str, ShareFile] = {}
            keyless: list[NoEncryptionKey] = []
            try:
                report, relations, shares = self._read(record, files, keyless)
                if record.state == DepositState.RECEIVED:
                    self._record_validation(deposit_id, report, relations)
            except BaseException:
                for file in files.values():
                    file.discard()
                raise
        if not report.conformant or keyless:
            for file in files.values():
                file.discard()
            if report.conformant:  # validated: routed later, once the organism has a key
                wait = self.store.retry_later(deposit_id, self.node, KEYLESS_WAIT_MS)
                log.warning("deposit %s not routed yet: %s; tried again in %d s", deposit_id,
                            keyless[0], wait // 1000)  # fmt: skip
            return
        with self.tracer.start_as_current_span("dsn.route", parent, attributes=attributes):
            self._record_routing(deposit_id, shares, files)

    def _read(
        self, record: DepositRecord, files: dict[str, ShareFile], keyless: list[NoEncryptionKey]
    ) -> tuple[Report, Relations, list[ReadShare]]:
        """The deposit's reading (registry/dsn/deposit_reading.py), each organism's share
        written to `files`; the organisms concerned that have no encryption key yet are in
        `keyless` (their share is written nowhere)."""

        def open_share(organism: str) -> BinaryIO:
            try:
                file = self.files.share_writer(delivery_id(record.id, organism), organism,
                                               self._encryption_key)  # fmt: skip
            except NoEncryptionKey as missing:
                keyless.append(missing)
                return _Dropped()  # type: ignore[return-value]  # write() is all it needs
            files[organism] = file
            return file  # type: ignore[return-value]  # write() is all the router uses

        name = self.files.deposit(record.id)
        # Read as it arrived (on the SIRETs its rights were checked on), else read whole in a
        # worker: the shares come back with it; else streamed here, into their files.
        reading = self._kept_reading(record)
        if reading is None and self.reading_workers and record.size <= WHOLE_BYTES:
            data = b"".join(self.files.read(name))
            reading = read_in_worker(self.reading_workers, data, record.sirets, self.router)
        if reading is None:
            reading = read_deposit(lambda: self.files.read(name), record.sirets, self.router,
                                   self.plans, open_share)  # fmt: skip
        else:
            for share in reading.shares:
                assert share.data is not None
                open_share(share.organism).write(share.data)
        return reading.report, reading.relations, reading.shares

    def _record_validation(self, deposit_id: str, report: Report, found: Relations) -> None:
        for attempt in range(RECORD_ATTEMPTS):
            try:
                self._record_validation_once(deposit_id, report, found)
                return
            except (IntegrityError, OperationalError) as error:
                # A relation inserted meanwhile by another deposit's recording, or the database
                # ending the transaction as a deadlock or a serialization failure: the whole
                # recording again (it finds the state and the relations as they are now).
                retried = isinstance(error, IntegrityError) or (
                    getattr(error.orig, "sqlstate", None) in _RETRIED_STATES
                )
                if not retried or attempt == RECORD_ATTEMPTS - 1:
                    raise

    def _record_validation_once(self, deposit_id: str, report: Report, found: Relations) -> None:
        def relations(connection: Connection | None) -> None:
            # Each recording locks the file's establishments (registry/relations/store.py
            # `_lock_establishments`) until the commit: two files for one establishment are
            # recorded one after the other.
            self.relations.record_links((
                Link(found.declarant_siret, siret, period, period, deposit_id)
                for siret, period in sorted(found.links)
            ), connection)  # fmt: skip
            period = max((period for _, period in found.links), default="")
            self.relations.record_employments(
                found.employments, (found.declarant_siret, period), connection
            )

        together = report.conformant
        if together and len(found.links) + len(found.employments) > RELATIONS_AT_ONCE:
            # A large file's relations by batches first (upserts: harmless when redone), so
            # that no transaction holds its locks (SQLite's one writer's) for long; then its CCO.
            relations(None)
            together = False

        first = report.declarations[0] if report.declarations else None
        document = json.dumps(report.as_dict(), ensure_ascii=False).encode()
        outcome = Validated(
            conformant=report.conformant,
            norm_version=report.versions[0] if report.versions else "",
            nature=first.nature if first else "", type=first.type if first else "",
            month=first.month if first else "",
            individuals=sum(d.individuals for d in report.declarations),
            blocking=report.blocking, warnings=report.warnings,
            rejection_code="" if report.conformant else "NOT_CONFORMANT",
            rejection_message="" if report.conformant else (
                f"{report.blocking} blocking anomalies: see the BAN"),
        )  # fmt: skip
        # A conformant file's relations are recorded with its CCO, in one transaction.
        self.store.record_validation(deposit_id, outcome, document, relations if together else None)
        log.info("deposit %s validated: %s", deposit_id, report.kind)

    def _record_routing(
        self, deposit_id: str, shares: list[ReadShare], files: dict[str, ShareFile]
    ) -> None:
        try:
            for share in shares:
                files[share.organism].seal()
            # The shares go in with the deliveries, in one transaction (on disk: just before).
            self.store.record_routing(deposit_id, [
                RoutedShare(s.organism, s.size, s.sha256, files[s.organism].key_id)
                for s in shares
            ], [files[s.organism] for s in shares])  # fmt: skip
        finally:  # nothing after a commit; what a refused or redone routing wrote, else
            for file in files.values():
                file.discard()
        concerned = ", ".join(sorted(share.organism for share in shares)) or "nobody"
        log.info("deposit %s routed to %s", deposit_id, concerned)
