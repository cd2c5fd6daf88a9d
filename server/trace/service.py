"""interops.trace.v1.TraceService: operators see one trace's spans as a tree, and find the
traces the audit journal links to a deposit, a SIRET or a token chain."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from interops.trace.v1 import trace_pb2 as pb
from interops.trace.v1 import trace_pb2_grpc

from registry.audit.store import AuditQuery, AuditStore
from registry.trace.store import StoredSpan, TraceStore
from registry.trace.tree import tree_order
from server.audit.journal import AuditJournal
from server.rpc.errors import FieldViolation, InvalidArgument
from server.rpc.handler_wrapping import Context
from server.trace.keeper import TraceKeeper

DEFAULT_TRACES = 20
# Journal records read for one search, at most (the most recent traces among them).
MAX_RECORDS = 20_000
_PAGE = 2_000


def _timestamp(nanos: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(nanos)
    return stamp


def span_message(span: StoredSpan, depth: int) -> pb.Span:
    """A kept span as its message."""
    return pb.Span(
        trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_id,
        name=span.name, kind=pb.SpanKind.ValueType(span.kind), service=span.service,
        reported_by=span.reported_by,
        start_time=_timestamp(span.start_ns), end_time=_timestamp(span.end_ns),
        status=pb.SpanStatus.ValueType(span.status), depth=depth,
        attributes={key: str(value) for key, value in span.attributes.items()},
    )  # fmt: skip


@dataclass
class _Found:
    first_ms: int
    last_ms: int
    records: int = 0


class TraceQueryService(trace_pb2_grpc.TraceServiceServicer):
    """Reads kept spans (after writing those queued) and the journal (after flushing it)."""

    def __init__(
        self,
        store: TraceStore,
        keeper: TraceKeeper | None,
        audit: AuditStore,
        journal: AuditJournal,
    ) -> None:
        self.store = store
        self.keeper = keeper
        self.audit = audit
        self.journal = journal

    async def GetTrace(self, request: pb.GetTraceRequest, context: Context) -> pb.GetTraceResponse:
        if self.keeper is not None:
            await self.keeper.flush()
        spans = await asyncio.to_thread(self.store.spans_of, request.trace_id)
        return pb.GetTraceResponse(spans=[span_message(s, d) for s, d in tree_order(spans)])

    async def SearchTraces(
        self, request: pb.SearchTracesRequest, context: Context
    ) -> pb.SearchTracesResponse:
        if not (request.deposit_id or request.siret or request.chain_id):
            violation = FieldViolation("deposit_id", "give a deposit id, a SIRET or a chain id")
            raise InvalidArgument("INVALID_ARGUMENT", "a search needs one filter at least",
                                  violations=[violation])  # fmt: skip
        filters = AuditQuery(
            chain_id=request.chain_id, siret=request.siret,
            resource=f"deposit:{request.deposit_id}" if request.deposit_id else "",
        )  # fmt: skip
        await self.journal.flush()
        found = await asyncio.to_thread(self._traces, filters)
        wanted = sorted(found.items(), key=lambda item: item[1].last_ms, reverse=True)
        if request.deposit_id and wanted:  # the deposit's own exchange first: the earliest
            first = min(wanted, key=lambda item: item[1].first_ms)
            wanted = [first, *(item for item in wanted if item is not first)]
        wanted = wanted[: request.max_traces or DEFAULT_TRACES]
        counts = await asyncio.to_thread(self.store.count_of, [t for t, _ in wanted])
        return pb.SearchTracesResponse(traces=[
            pb.TraceSummary(
                trace_id=trace_id, first_record_time=_timestamp(seen.first_ms * 10**6),
                last_record_time=_timestamp(seen.last_ms * 10**6), record_count=seen.records,
                span_count=counts.get(trace_id, 0),
            )
            for trace_id, seen in wanted
        ])  # fmt: skip

    def _traces(self, filters: AuditQuery) -> dict[str, _Found]:
        """The traces of the matching journal records (the newest MAX_RECORDS of them)."""
        found: dict[str, _Found] = {}
        position, read = 0, 0
        while read < MAX_RECORDS:
            rows = self.audit.query(filters, position, _PAGE, newest_first=True)
            for row in rows:
                trace_id, at = str(row["trace_id"]), int(str(row["at"]))
                if not trace_id.strip("0"):
                    continue
                seen = found.setdefault(trace_id, _Found(at, at))
                seen.first_ms, seen.last_ms = min(seen.first_ms, at), max(seen.last_ms, at)
                seen.records += 1
            read += len(rows)
            if len(rows) < _PAGE:
                break
            position = int(str(rows[-1]["position"]))
        return found
