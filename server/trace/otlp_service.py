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
# A span that claims to end this far in the future would outlive its retention: refused.
MAX_CLOCK_SKEW_NS = 3600 * 10**9


class TraceCollector(otlp_grpc.TraceServiceServicer):
    """Keeps the spans organisms send (nothing when `keeping` is off: retention 0)."""

    def __init__(
        self,
        store: TraceStore,
        keeping: bool = True,
        max_spans: int = MAX_EXPORT_SPANS,
        max_bytes: int = MAX_EXPORT_BYTES,
    ) -> None:
        self.store = store
        self.keeping = keeping
        self.max_spans = max_spans
        self.max_bytes = max_bytes

    async def Export(
        self, request: otlp.ExportTraceServiceRequest, context: Context
    ) -> otlp.ExportTraceServiceResponse:
        kind, _, organism = current_principal().subject.partition(":")
        if kind != "organism" or not organism:
            raise PermissionDenied("NOT_AN_ORGANISM", "only an organism's system sends spans")
        size = request.ByteSize()
        if size > self.max_bytes:
            raise ResourceExhausted("TOO_LARGE", f"an export holds at most {self.max_bytes} "
                                    f"bytes, not {size}: send smaller batches")  # fmt: skip
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        if count > self.max_spans:
            raise ResourceExhausted("TOO_LARGE", f"an export holds at most {self.max_spans} "
                                    f"spans, not {count}: send smaller batches")  # fmt: skip
        latest = time.time_ns() + MAX_CLOCK_SKEW_NS
        spans = [s for s in of_otlp(request.resource_spans, organism) if s.end_ns <= latest]
        if self.keeping:
            await asyncio.to_thread(write_unseen, self.store, spans)
        rejected = count - len(spans)
        if not rejected:
            return otlp.ExportTraceServiceResponse()
        return otlp.ExportTraceServiceResponse(partial_success=otlp.ExportTracePartialSuccess(
            rejected_spans=rejected,
            error_message="spans without valid ids, or ending more than an hour from now",
        ))  # fmt: skip
