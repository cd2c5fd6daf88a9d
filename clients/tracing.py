"""OpenTelemetry for every process of the backbone (the node, the command line, organisms'
systems): a tracer provider sending spans to the exporter chosen by configuration, and the W3C
trace context carried across processes.

Exporters: "otlp" (to any collector: Jaeger, Tempo...; endpoint, headers and TLS from the
standard OTEL_EXPORTER_OTLP_* variables, e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4317),
"interops" (an organism's system sends its spans to the node's own collector, with its token
chain and a proof on every export: see `InteropsSpanExporter`), "console", or "none".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clients.address import open_channel
from clients.credentials import CallCredentials, SyncCredentialsInterceptor

EXPORTERS = ("console", "otlp", "interops", "none")
# The node's OTLP collector: the audience of the chains an organism exports its spans with.
COLLECTOR_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_PROPAGATOR = TraceContextTextMapPropagator()
log = logging.getLogger("interops.tracing")


class InteropsSpanExporter(SpanExporter):
    """Sends spans to the node's OTLP collector (TraceService/Export, the standard call) with
    the organism's credentials: its chain must grant trace.write and name COLLECTOR_SERVICE in
    its audience. The export itself is never traced."""

    def __init__(
        self,
        address: str,
        credentials: CallCredentials,
        *,
        tls: grpc.ChannelCredentials | None = None,
        timeout: float = 10.0,
    ) -> None:
        raw = open_channel(address, tls)
        self._raw = raw
        channel = grpc.intercept_channel(raw, SyncCredentialsInterceptor(credentials))
        self._stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        self.timeout = timeout

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Sends one batch; a refusal is logged (with its reason) and the batch is dropped."""
        with suppress_instrumentation():
            try:
                self._stub.Export(encode_spans(spans), timeout=self.timeout)
            except grpc.RpcError as error:
                log.warning("spans not sent to the node: %s %s", error.code(), error.details())
                return SpanExportResult.FAILURE
            except Exception as error:  # a chain that cannot be issued, say
                log.warning("spans not sent to the node: %s", error)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Closes the channel."""
        self._raw.close()


def _exporter(name: str) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


def tracer_provider(
    service_name: str, exporter: str, chosen: SpanExporter | None = None
) -> TracerProvider:
    """A provider that records every span and sends them to the named exporter ("none": none;
    "interops" needs the exporter made, `chosen`, since it needs credentials).

    Spans are recorded even with no exporter, so that every call has a trace id to log.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    chosen = chosen or _exporter(exporter)
    if chosen is not None:
        provider.add_span_processor(BatchSpanProcessor(chosen))
    return provider


def exporter_from_env() -> str:
    """The exporter INTEROPS_TRACING_EXPORTER names ("none" by default, or when unknown)."""
    exporter = os.environ.get("INTEROPS_TRACING_EXPORTER", "none").lower()
    return exporter if exporter in EXPORTERS else "none"


def provider_from_env(
    service_name: str, chosen: SpanExporter | None = None
) -> TracerProvider | None:
    """The command line's provider when INTEROPS_TRACING_EXPORTER asks for one (default none);
    "interops" only with its exporter made (`chosen`), as a process with credentials makes it
    (the sample organism does)."""
    exporter = exporter_from_env()
    if exporter == "none" or (exporter == "interops" and chosen is None):
        return None
    return tracer_provider(os.environ.get("OTEL_SERVICE_NAME", service_name), exporter, chosen)


def traceparent() -> str:
    """The W3C traceparent of the current span ("" when there is none)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def context_of(parent: str) -> otel_context.Context:
    """A context whose current span is the one a W3C traceparent names (empty: none)."""
    return _PROPAGATOR.extract({"traceparent": parent} if parent else {})


def trace_id_of(parent: str) -> str:
    """The trace id (32 hex digits) of a W3C traceparent ("" if none)."""
    span = trace.get_current_span(context_of(parent))
    trace_id = span.get_span_context().trace_id
    return f"{trace_id:032x}" if trace_id else ""
