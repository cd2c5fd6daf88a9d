"""interops.dsn.v1.DepositService: declarants deposit DSNs and follow them and their returns.

The declarant is the token chain's subject; it sees only its own deposits and returns. A deposit
is answered at once: an AEE when the file is taken (validation and routing follow in the
pipeline), an ARE when it is refused as a whole (empty, not a DSN, an unsupported norm version,
or an establishment the chain does not grant `dsn.deposit` over).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from interops.dsn.v1 import dsn_pb2 as pb
from interops.dsn.v1 import dsn_pb2_grpc

from clients.tracing import trace_id_of, traceparent
from registry.dsn.deposit_reading import DepositReading
from registry.dsn.deposit_store import DepositFiles, DepositRecord, DepositStore, NewDeposit
from registry.dsn.scan import DepositScan, scan_and_read_whole, scan_whole
from registry.habilitation.managed import taken_over
from registry.kernel.change_feed import DEPOSIT, RETURN, ChangeFeed
from registry.kernel.database import reading
from registry.kernel.rights import DSN_DEPOSIT
from registry.kernel.sealing import SealedWriter
from registry.trust.declarant_store import DeclarantStore
from server.audit.journal import note
from server.dsn.pipeline import DsnPipeline
from server.dsn.reading_pool import WHOLE_BYTES, run_in_worker
from server.rpc import page_tokens
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from server.rpc.handler_wrapping import Context
from token_suite.verify import VerifiedChain

DEFAULT_PAGE = 20
RETURNS_BATCH = 100


def deposit_message(record: DepositRecord) -> pb.Deposit:
    """A deposit as its declarant sees it, with the id of the trace that deposited it."""
    return record.to_proto(trace_id_of(record.trace_parent))


class DepositService(dsn_pb2_grpc.DepositServiceServicer):
    """Deposits into sealed files and the database; the pipeline does the rest."""

    def __init__(
        self,
        store: DepositStore,
        files: DepositFiles,
        pipeline: DsnPipeline,
        max_bytes: int,
        poll_seconds: float,
        *,
        declarants: DeclarantStore,
        changes: ChangeFeed,
    ) -> None:
        self.changes = changes
        self.declarants = declarants
        self.engine = declarants.engine
        self.store = store
        self.files = files
        self.pipeline = pipeline
        self.max_bytes = max_bytes
        self.poll_seconds = poll_seconds

    async def SubmitDeposit(
        self, request_iterator: AsyncIterator[pb.SubmitDepositRequest], context: Context
    ) -> pb.SubmitDepositResponse:
        declarant = current_principal().subject
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument(
                "HEADER_FIRST", "the first message of a deposit must be the header",
                violations=[FieldViolation("header", "must come first")],
            )  # fmt: skip
        header = first.header
        if header.request_id:
            known = await asyncio.to_thread(self.store.find, declarant, header.request_id, b"")
            if known is not None:
                return pb.SubmitDepositResponse(deposit=deposit_message(known))
        new = NewDeposit(
            declarant, header.request_id or None, header.file_name, 0, b"",
            trace_parent=traceparent(),
        )  # fmt: skip
        writer = self.files.writer(self.files.deposit(new.id))
        scan = DepositScan()
        # The scan reads every line (the one reading), off the event loop: a file of at most
        # WHOLE_BYTES whole in a worker process once it is all here (the node's process keeps
        # its core for the calls), a larger one here as its bytes arrive.
        workers = self.pipeline.reading_workers
        held: list[bytes] | None = [] if workers else None
        try:
            async for request in request_iterator:
                if request.WhichOneof("part") != "chunk":
                    raise InvalidArgument(
                        "HEADER_TWICE", "only the first message of a deposit is a header",
                        violations=[FieldViolation("header", "sent again after the first")],
                    )  # fmt: skip
                if writer.size + len(request.chunk) > self.max_bytes:
                    raise ResourceExhausted(
                        "DEPOSIT_TOO_LARGE",
                        f"the file is larger than this node accepts ({self.max_bytes} bytes)",
                        metadata={"max_bytes": str(self.max_bytes)},
                    )
                writer.write(request.chunk)
                if held is not None and writer.size <= WHOLE_BYTES:
                    held.append(request.chunk)
                    continue
                for chunk in held or ():  # too large to scan whole: from its start, here
                    await asyncio.to_thread(scan.feed, chunk)
                held = None
                await asyncio.to_thread(scan.feed, request.chunk)
            arrived = None  # the reading done as it arrived, which the pipeline takes
            if held is not None and self.pipeline.room():  # scanned and read at once
                data = b"".join(held)
                scan, arrived = await asyncio.to_thread(
                    run_in_worker, workers, scan_and_read_whole, data, self.pipeline.router
                )
            elif held is not None:  # the pipeline holds all the readings it may: read later
                scan = await asyncio.to_thread(run_in_worker, workers, scan_whole, b"".join(held))
            else:
                await asyncio.to_thread(scan.finish)
        except BaseException:
            writer.discard()
            raise
        record = await self._store(new, writer, scan, arrived)
        return pb.SubmitDepositResponse(deposit=deposit_message(record))

    async def _store(
        self,
        new: NewDeposit,
        writer: SealedWriter,
        scan: DepositScan,
        arrived: DepositReading | None = None,
    ) -> DepositRecord:
        # The lookups, the checks and the storing on one thread hop (a deposit's own steps).
        record, created, taken = await asyncio.to_thread(
            self._store_now, new, writer, scan, arrived, current_principal()
        )
        note(resource=f"deposit:{record.id}", siret=record.sirets[0] if record.sirets else "")
        if created and taken:
            self.pipeline.wake()
        return record

    def _store_now(
        self,
        new: NewDeposit,
        writer: SealedWriter,
        scan: DepositScan,
        arrived: DepositReading | None,
        principal: VerifiedChain,
    ) -> tuple[DepositRecord, bool, bool]:
        """(The deposit stored, or the one of the same content found; whether it is new;
        whether it was taken: an AEE, for the pipeline)."""
        same = self.store.find(new.declarant, None, writer.sha256)
        if same is not None:  # the same content again: the same deposit
            writer.discard()
            return same, False, False
        refusal = scan.refusal(
            writer.size, lambda siret: principal.allows(DSN_DEPOSIT, siret), DSN_DEPOSIT,
            self._own_emitter(principal), self._taken_over(scan),
        )  # fmt: skip
        # Kept before the deposit is stored: a round may claim it as soon as it is.
        kept = (
            arrived is not None
            and refusal is None
            and self.pipeline.keep(new.id, writer.sha256, writer.size, arrived)
        )
        try:
            record, created = self.store.receive(scan.described(new, refusal), writer)
        except BaseException:
            self.pipeline.forget([new.id])
            raise
        if kept and not created:  # a retry stored it first, under its own id
            self.pipeline.forget([new.id])
        return record, created, refusal is None

    def _taken_over(self, scan: DepositScan) -> dict[str, str]:
        """The establishments of the file another firm took over from the émetteur's company
        (its links ended at or before the file's period, and no mandate lets it go on)."""
        period = scan.period()
        if not scan.emitters or not period or not scan.sirets:
            return {}
        taken: dict[str, str] = {}
        with reading(self.engine) as connection:
            for siren in sorted({emitter[:9] for emitter in scan.emitters}):
                taken.update(taken_over(connection, siren, scan.sirets, period))
        return taken

    def _own_emitter(self, principal: VerifiedChain) -> Callable[[str], bool]:
        """Whether an émetteur SIRET is the depositor's own: a declarant's, of the company of
        its account (its SIREN); anyone else's, one it may deposit for."""
        kind, _, subject = principal.subject.partition(":")
        if kind == "declarant" and subject.isdigit():
            siret = self.declarants.siret_of(int(subject)) or ""
            return lambda emitter: len(siret) == 14 and emitter[:9] == siret[:9]
        return lambda emitter: principal.allows(DSN_DEPOSIT, emitter)

    async def _own(self, deposit_id: str) -> DepositRecord:
        record = await asyncio.to_thread(self.store.get, deposit_id, current_principal().subject)
        if record is None:
            # The same answer whether it does not exist or is someone else's.
            raise NotFound("DEPOSIT_NOT_FOUND", f"no deposit {deposit_id} of yours")
        return record

    async def GetDeposit(
        self, request: pb.GetDepositRequest, context: Context
    ) -> pb.GetDepositResponse:
        return pb.GetDepositResponse(deposit=deposit_message(await self._own(request.id)))

    async def ListDeposits(
        self, request: pb.ListDepositsRequest, context: Context
    ) -> pb.ListDepositsResponse:
        declarant = current_principal().subject
        query = ("deposits", declarant)
        after = page_tokens.decode(request.page_token, query, 2)
        size = request.page_size or DEFAULT_PAGE
        before = (int(after[0]), after[1]) if after else None
        found = await asyncio.to_thread(self.store.list_for, declarant, size + 1, before)
        page, token = page_tokens.cut(found, size, query, lambda r: [str(r.received_at), r.id])
        return pb.ListDepositsResponse(
            deposits=[deposit_message(r) for r in page], next_page_token=token
        )

    async def WatchDeposit(
        self, request: pb.WatchDepositRequest, context: Context
    ) -> AsyncIterator[pb.WatchDepositResponse]:
        with self.changes.watch(DEPOSIT, request.id) as changed:
            record = await self._own(request.id)
            yield pb.WatchDepositResponse(deposit=deposit_message(record))
            while not record.finished:
                await changed.wait(self.poll_seconds)
                version = await asyncio.to_thread(self.store.version, request.id)
                if version != record.version:
                    record = await self._own(request.id)
                    yield pb.WatchDepositResponse(deposit=deposit_message(record))

    async def ListReturns(
        self, request: pb.ListReturnsRequest, context: Context
    ) -> pb.ListReturnsResponse:
        declarant = current_principal().subject
        if request.deposit_id:
            await self._own(request.deposit_id)
        query = ("returns", declarant, request.deposit_id)
        after = page_tokens.decode(request.page_token, query, 1)
        size = request.page_size or DEFAULT_PAGE
        found = await asyncio.to_thread(
            self.store.returns_for, declarant, int(after[0]) if after else 0, size + 1,
            request.deposit_id,
        )  # fmt: skip
        page, token = page_tokens.cut(found, size, query, lambda r: [str(r.position)])
        return pb.ListReturnsResponse(returns=[r.to_proto() for r in page], next_page_token=token)

    async def WatchReturns(
        self, request: pb.WatchReturnsRequest, context: Context
    ) -> AsyncIterator[pb.WatchReturnsResponse]:
        declarant = current_principal().subject
        position = request.after_position
        with self.changes.watch(RETURN, declarant) as changed:
            while True:
                found = await asyncio.to_thread(
                    self.store.returns_for, declarant, position, RETURNS_BATCH
                )
                for record in found:
                    yield pb.WatchReturnsResponse(**{"return": record.to_proto()})
                    position = record.position
                if len(found) == RETURNS_BATCH:
                    continue
                if not request.follow:
                    return
                await changed.wait(self.poll_seconds)
