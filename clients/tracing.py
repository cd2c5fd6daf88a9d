"""OpenTelemetry for every process of the backbone (the node, the command line, organisms'
systems): a tracer provider sending spans to the exporter chosen by configuration, and the W3C
trace context carried across processes.

Exporters: "otlp" (to any collector: Jaeger, Tempo...; endpoint, headers and TLS from the
standard OTEL_EXPORTER_OTLP_* variables), "console", or "none".
"""

from __future__ import annotations

import os

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

EXPORTERS = ("console", "otlp", "none")
_PROPAGATOR = TraceContextTextMapPropagator()


def _exporter(name: str) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
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


def provider_from_env(service_name: str) -> TracerProvider | None:
    """The command line's provider when INTEROPS_TRACING_EXPORTER asks for one (default none)."""
    exporter = os.environ.get("INTEROPS_TRACING_EXPORTER", "none").lower()
    if exporter not in EXPORTERS or exporter == "none":
        return None
    return tracer_provider(os.environ.get("OTEL_SERVICE_NAME", service_name), exporter)


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
