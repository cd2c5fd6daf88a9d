"""The operator page: one exchange followed across organisms. Found by trace id, deposit id,
SIRET or token chain id, it shows the trace's spans (the node's and the organisms') as a
waterfall, next to the audit journal's records of the same trace."""

from __future__ import annotations

import re
from dataclasses import dataclass

from interops.audit.v1 import audit_pb2
from interops.trace.v1 import trace_pb2
from starlette.requests import Request
from starlette.responses import Response

from clients.errors import InteropsError
from registry.kernel.rights import AUDIT_READ
from server.web.node_calls import NodeCalls
from server.web.rendering import Pages
from server.web.sessions import Session

AUDIT = "/interops.audit.v1.AuditService"
TRACE = "/interops.trace.v1.TraceService"
# What each search field accepts (anything else is not searched: the node would refuse it).
_FIELDS = {
    "trace_id": re.compile(r"[0-9a-f]{32}"),
    "deposit_id": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "siret": re.compile(r"[0-9]{14}"),
    "chain_id": re.compile(r"[0-9a-f]{2,64}"),
}
# The waterfall's scale: a bar's place and length in thousandths of the trace's duration.
SCALE = 1000
MAX_DEPTH = 12


@dataclass(frozen=True)
class Row:
    """One span of the waterfall, placed on the trace's time line."""

    span: trace_pb2.Span
    depth: int
    offset: int
    length: int
    duration_ms: float
    error: bool


def waterfall(spans: list[trace_pb2.Span]) -> list[Row]:
    """The spans (in tree order) as rows: each bar's offset and length on a 0..SCALE line."""
    if not spans:
        return []
    start = min(s.start_time.ToNanoseconds() for s in spans)
    total = max(max(s.end_time.ToNanoseconds() for s in spans) - start, 1)
    rows = []
    for span in spans:
        begin, end = span.start_time.ToNanoseconds(), span.end_time.ToNanoseconds()
        offset = min(SCALE - 2, (begin - start) * SCALE // total)
        length = max(2, min(SCALE - offset, (end - begin) * SCALE // total))
        rows.append(Row(span, min(span.depth, MAX_DEPTH), offset, length, (end - begin) / 1e6,
                        span.status == trace_pb2.SPAN_STATUS_ERROR))  # fmt: skip
    return rows


class OperatorPages:
    """The pages of a signed-in operator (who holds audit.read)."""

    def __init__(self, node: NodeCalls, pages: Pages) -> None:
        self.node = node
        self.pages = pages

    async def operator(self, request: Request) -> Response:
        """GET /operator?trace_id=...|deposit_id=...|siret=...|chain_id=...: one exchange."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        if not session.holds(AUDIT_READ):
            return self.pages.error(request, 403, "Cette page est réservée aux opérateurs.")
        asked = {name: request.query_params.get(name, "").strip() for name in _FIELDS}
        asked["trace_id"] = asked["trace_id"].lower()
        valid = {name: value for name, value in asked.items()
                 if value and _FIELDS[name].fullmatch(value)}  # fmt: skip
        trace_id = valid.get("trace_id", "")
        found: list[trace_pb2.TraceSummary] = []
        spans: list[trace_pb2.Span] = []
        records: list[audit_pb2.AuditRecord] = []
        try:
            if not trace_id and valid:
                found = await self._search(session, valid)
                trace_id = found[0].trace_id if found else ""
            if trace_id:
                spans = await self._spans(session, trace_id)
                records = await self._records(session, trace_id)
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        return self.pages.render(request, "operator.html", session, records=records,
                                 rows=waterfall(spans), found=found, trace_id=trace_id,
                                 asked=asked, searched=any(asked.values()),
                                 scale=SCALE)  # fmt: skip

    async def _search(
        self, session: Session, valid: dict[str, str]
    ) -> list[trace_pb2.TraceSummary]:
        request = trace_pb2.SearchTracesRequest(
            deposit_id=valid.get("deposit_id", ""), siret=valid.get("siret", ""),
            chain_id=valid.get("chain_id", ""), max_traces=20,
        )  # fmt: skip
        answer = await self.node.for_session(session, f"{TRACE}/SearchTraces", request,
                                  trace_pb2.SearchTracesResponse)  # fmt: skip
        return list(answer.traces)

    async def _spans(self, session: Session, trace_id: str) -> list[trace_pb2.Span]:
        request = trace_pb2.GetTraceRequest(trace_id=trace_id)
        answer = await self.node.for_session(session, f"{TRACE}/GetTrace", request,
                                  trace_pb2.GetTraceResponse)  # fmt: skip
        return list(answer.spans)

    async def _records(self, session: Session, trace_id: str) -> list[audit_pb2.AuditRecord]:
        request = audit_pb2.ListRecordsRequest(page_size=500, trace_id=trace_id)
        answer = await self.node.for_session(session, f"{AUDIT}/ListRecords", request,
                                  audit_pb2.ListRecordsResponse)  # fmt: skip
        return list(answer.records)
