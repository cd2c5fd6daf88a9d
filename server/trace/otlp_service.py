"""The node's OTLP trace collector: opentelemetry.proto.collector.trace.v1.TraceService/Export,
the standard service any OpenTelemetry exporter speaks, on the node's gRPC port.

It is authenticated like every call (token chain with the trace.write right, and proof): only
an organism may send spans, and each span is kept as reported by that organism, whatever
service name it gives itself. Only what attributes.py allows of a span is kept. An export is
limited in spans and bytes (RESOURCE_EXHAUSTED, reason TOO_LARGE, beyond them).
"""

from __future__ import annotations

import asyncio
import time

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc

from registry.trace.store import TraceStore
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import PermissionDenied, ResourceExhausted
from server.rpc.handler_wrapping import Context
from server.trace.attributes import of_otlp
from server.trace.keeper import write_unseen

SERVICE = otlp.DESCRIPTOR.services_by_name["TraceService"].full_name
EXPORT = f"/{SERVICE}/Export"
# An OpenTelemetry batch is 512 spans by default; a few batches together still fit.
MAX_EXPORT_SPANS = 2048
MAX_EXPORT_BYTES = 4 * 1024 * 1024
# A span that claims to end this far in the future would outlive its retention, one that starts
# before its retention began would stretch the waterfall over days: both refused.
MAX_CLOCK_SKEW_NS = 3600 * 10**9
# How many spans one organism may send a minute, on each node (RESOURCE_EXHAUSTED beyond,
# TOO_MANY_SPANS: its exporter retries later); a busy organism's system sends a few hundred.
SPANS_A_MINUTE = 60_000


class TraceCollector(otlp_grpc.TraceServiceServicer):
    """Keeps the spans organisms send for `retention_hours` (nothing when 0: it accepts and
    forgets them)."""

    def __init__(
        self,
        store: TraceStore,
        retention_hours: float = 72.0,
        max_spans: int = MAX_EXPORT_SPANS,
        max_bytes: int = MAX_EXPORT_BYTES,
        spans_a_minute: int = SPANS_A_MINUTE,
    ) -> None:
        self.store = store
        self.retention_ns = int(retention_hours * 3600 * 10**9)
        self.max_spans = max_spans
        self.max_bytes = max_bytes
        self.spans_a_minute = spans_a_minute
        self._sent: dict[str, tuple[int, int]] = {}  # organism: (minute, spans so far)

    def _within_rate(self, organism: str, count: int) -> None:
        minute = int(time.monotonic() // 60)
        seen_minute, sent = self._sent.get(organism, (minute, 0))
        sent = sent if seen_minute == minute else 0
        if sent + count > self.spans_a_minute:
            raise ResourceExhausted("TOO_MANY_SPANS", f"at most {self.spans_a_minute} spans a "
                                    "minute from one organism: send them later")  # fmt: skip
        self._sent[organism] = (minute, sent + count)

    async def Export(
        self, request: otlp.ExportTraceServiceRequest, context: Context
    ) -> otlp.ExportTraceServiceResponse:
        principal = current_principal()
        kind, _, organism = principal.subject.partition(":")
        if kind != "organism" or not organism or principal.holder.organism != organism:
            # A chain handed on to another organism: the spans would carry the first one's name.
            raise PermissionDenied("NOT_AN_ORGANISM", "only an organism's system sends spans, "
                                   "with a chain it holds itself")  # fmt: skip
        size = request.ByteSize()
        if size > self.max_bytes:
            raise ResourceExhausted("TOO_LARGE", f"an export holds at most {self.max_bytes} "
                                    f"bytes, not {size}: send smaller batches")  # fmt: skip
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        if count > self.max_spans:
            raise ResourceExhausted("TOO_LARGE", f"an export holds at most {self.max_spans} "
                                    f"spans, not {count}: send smaller batches")  # fmt: skip
        self._within_rate(organism, count)
        now = time.time_ns()
        earliest, latest = now - self.retention_ns - MAX_CLOCK_SKEW_NS, now + MAX_CLOCK_SKEW_NS
        spans = [
            s
            for s in await asyncio.to_thread(list, of_otlp(request.resource_spans, organism))
            if earliest <= s.start_ns and s.end_ns <= latest
        ]
        if self.retention_ns:
            await asyncio.to_thread(write_unseen, self.store, spans)
        rejected = count - len(spans)
        if not rejected:
            return otlp.ExportTraceServiceResponse()
        return otlp.ExportTraceServiceResponse(partial_success=otlp.ExportTracePartialSuccess(
            rejected_spans=rejected,
            error_message="spans without valid ids, or outside the retention period (starting "
            "before it, or ending more than an hour from now)",
        ))  # fmt: skip
