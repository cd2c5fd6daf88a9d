"""interops.dsn.v1.DepositService: declarants deposit DSNs and follow them and their returns.

The declarant is the token chain's subject; it sees only its own deposits and returns. A deposit
is answered at once: an AEE when the file is taken (validation and routing follow in the
pipeline), an ARE when it is refused as a whole (empty, not a DSN, an unsupported norm version,
or an establishment the chain does not grant `dsn.deposit` over).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from interops.dsn.v1 import dsn_pb2 as pb
from interops.dsn.v1 import dsn_pb2_grpc

from clients.tracing import traceparent
from registry.dsn.deposit_store import DepositRecord, DepositStore, NewDeposit
from registry.dsn.norm import supported_versions
from registry.dsn.scan import DepositScan
from registry.kernel.sealing import SealedWriter
from server.audit.journal import note
from server.dsn.messages import deposit_message, return_message
from server.dsn.pipeline import DepositFiles, DsnPipeline
from server.rpc import page_tokens
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from server.rpc.handler_wrapping import Context

DEPOSIT_RIGHT = "dsn.deposit"
DEFAULT_PAGE = 20
RETURNS_BATCH = 100


def _refusal(scan: DepositScan, size: int) -> tuple[str, str]:
    """(code, message) of an ARE, or ("", "") when the file is taken."""
    if size == 0:
        return "EMPTY_FILE", "the file is empty"
    if not scan.starts_with_rubric or not scan.versions:
        return "NOT_A_DSN", "the file is not a NEODeS DSN (no S10.G00.00.006 norm version)"
    unsupported = sorted(set(scan.versions) - set(supported_versions()))
    if unsupported:
        return "UNSUPPORTED_VERSION", (
            f"norm version {unsupported[0]} is not supported; one of "
            f"{', '.join(supported_versions())}"
        )
    if not scan.sirets:
        return "NO_ESTABLISHMENT", "the file declares no establishment (S21.G00.06/S21.G00.11)"
    if scan.too_many_sirets:
        return "TOO_MANY_ESTABLISHMENTS", "the file declares too many establishments"
    principal = current_principal()
    outside = [siret for siret in scan.sirets if not principal.allows(DEPOSIT_RIGHT, siret)]
    if outside:
        return "NOT_ENTITLED", (
            f"the token does not grant {DEPOSIT_RIGHT} over establishment {outside[0]}"
        )
    return "", ""


class DepositService(dsn_pb2_grpc.DepositServiceServicer):
    """Deposits into sealed files and the database; the pipeline does the rest."""

    def __init__(
        self,
        store: DepositStore,
        files: DepositFiles,
        pipeline: DsnPipeline,
        max_bytes: int,
        poll_seconds: float,
    ) -> None:
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
        new = NewDeposit(declarant, header.request_id or None, header.file_name, 0, b"")
        path = self.files.deposit(new.id)
        writer = self.files.writer(path)
        scan = DepositScan()
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
                scan.feed(request.chunk)
            scan.finish()
        except BaseException:
            writer.discard()
            raise
        record = await self._store(new, writer, scan)
        return pb.SubmitDepositResponse(deposit=deposit_message(record))

    async def _store(
        self, new: NewDeposit, writer: SealedWriter, scan: DepositScan
    ) -> DepositRecord:
        same = await asyncio.to_thread(self.store.find, new.declarant, None, writer.sha256)
        if same is not None:  # the same content again: the same deposit
            writer.discard()
            return same
        code, message = _refusal(scan, writer.size)
        if code:
            writer.discard()  # an ARE keeps no file: nothing will read it
        else:
            await asyncio.to_thread(writer.close)
        stored = NewDeposit(
            new.declarant, new.request_id, new.file_name, writer.size, writer.sha256,
            receipt="ARE" if code else "AEE", rejection_code=code, rejection_message=message,
            norm_version=scan.versions[0] if scan.versions else "", nature=scan.nature,
            type=scan.type, month=scan.month, sirets=tuple(scan.sirets),
            trace_parent=traceparent(), id=new.id,
        )  # fmt: skip
        record, created = await asyncio.to_thread(self.store.create, stored)
        note(resource=f"deposit:{record.id}", siret=record.sirets[0] if record.sirets else "")
        if not created:
            self.files.deposit(new.id).unlink(missing_ok=True)
        elif not code:
            self.pipeline.wake()
        return record

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
        record = await self._own(request.id)
        yield pb.WatchDepositResponse(deposit=deposit_message(record))
        while not record.finished:
            await asyncio.sleep(self.poll_seconds)
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
        return pb.ListReturnsResponse(
            returns=[return_message(r) for r in page], next_page_token=token
        )

    async def WatchReturns(
        self, request: pb.WatchReturnsRequest, context: Context
    ) -> AsyncIterator[pb.WatchReturnsResponse]:
        declarant = current_principal().subject
        position = request.after_position
        while True:
            found = await asyncio.to_thread(
                self.store.returns_for, declarant, position, RETURNS_BATCH
            )
            for record in found:
                yield pb.WatchReturnsResponse(**{"return": return_message(record)})
                position = record.position
            if len(found) == RETURNS_BATCH:
                continue
            if not request.follow:
                return
            await asyncio.sleep(self.poll_seconds)
