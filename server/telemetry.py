"""Tracing of the node: a tracer provider with the configured exporter, and the gRPC server
interceptor of opentelemetry-instrumentation-grpc (W3C trace context read from metadata)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def _exporter(name: str) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        # Endpoint, headers and TLS from the standard OTEL_EXPORTER_OTLP_* variables.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


def tracer_provider(service_name: str, exporter: str) -> TracerProvider:
    """A provider that records every span and sends them to the named exporter ("none": none).

    Spans are recorded even with no exporter, so that every call has a trace id to log.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    chosen = _exporter(exporter)
    if chosen is not None:
        provider.add_span_processor(BatchSpanProcessor(chosen))
    return provider


def current_trace_id() -> str:
    """The trace id of the call being served, as 32 hex digits (zeros when none)."""
    return f"{trace.get_current_span().get_span_context().trace_id:032x}"


def tracing_interceptor(provider: TracerProvider) -> Any:
    """The OpenTelemetry server interceptor (a grpc.aio.ServerInterceptor), first in the
    chain."""
    return aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]
