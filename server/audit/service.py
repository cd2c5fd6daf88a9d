"""interops.audit.v1.AuditService: operators find exchanges in the audit journal."""

from __future__ import annotations

import asyncio

from google.protobuf.timestamp_pb2 import Timestamp
from interops.audit.v1 import audit_pb2 as pb
from interops.audit.v1 import audit_pb2_grpc

from registry.audit.store import AuditQuery, AuditStore
from server.audit.journal import AuditJournal
from server.rpc import page_tokens
from server.rpc.handler_wrapping import Context

DEFAULT_PAGE = 100


def _bytes(value: object) -> bytes:
    assert isinstance(value, (bytes, bytearray, memoryview))
    return bytes(value)


def record_message(row: dict[str, object]) -> pb.AuditRecord:
    """A stored record as its message."""
    at = Timestamp()
    at.FromMilliseconds(int(str(row["at"])))
    return pb.AuditRecord(
        journal=str(row["journal"]), seq=int(str(row["seq"])), at=at, trace_id=str(row["trace_id"]),
        chain_id=str(row["chain_id"]), subject=str(row["subject"]),
        organisms=[o for o in str(row["organisms"]).split("|") if o],
        service=str(row["service"]), method=str(row["method"]), resource=str(row["resource"]),
        siret=str(row["siret"]), outcome=str(row["outcome"]),
        request_digest=str(row["request_digest"]), response_digest=str(row["response_digest"]),
        flags=[f for f in str(row["flags"]).split(",") if f], hash=_bytes(row["hash"]),
    )  # fmt: skip


class AuditService(audit_pb2_grpc.AuditServiceServicer):
    """Queries the journal (after writing what is queued, so a query sees calls just made)."""

    def __init__(self, store: AuditStore, journal: AuditJournal) -> None:
        self.store = store
        self.journal = journal

    async def ListRecords(
        self, request: pb.ListRecordsRequest, context: Context
    ) -> pb.ListRecordsResponse:
        filters = AuditQuery(
            trace_id=request.trace_id, chain_id=request.chain_id, siret=request.siret,
            organism=request.organism, resource=request.resource,
            after_ms=request.after.ToMilliseconds() if request.HasField("after") else 0,
            before_ms=request.before.ToMilliseconds() if request.HasField("before") else 0,
        )  # fmt: skip
        query = ("audit", filters)
        after = page_tokens.decode(request.page_token, query, 1)
        size = request.page_size or DEFAULT_PAGE
        await self.journal.flush()
        rows = await asyncio.to_thread(
            self.store.query, filters, int(after[0]) if after else 0, size + 1
        )
        page, token = page_tokens.cut(rows, size, query, lambda r: [str(r["position"])])
        return pb.ListRecordsResponse(
            records=[record_message(r) for r in page], next_page_token=token
        )
