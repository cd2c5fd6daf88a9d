"""Tracing of the node: the tracer provider (clients.tracing, shared with every process), the
gRPC server interceptor of opentelemetry-instrumentation-grpc (W3C trace context read from
metadata) and the SQLAlchemy instrumentation (statements with placeholders, never values)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Engine

from clients.tracing import tracer_provider

__all__ = ["current_trace_id", "instrument_engine", "tracer_provider", "tracing_interceptor"]


def current_trace_id() -> str:
    """The trace id of the call being served, as 32 hex digits (zeros when none)."""
    return f"{trace.get_current_span().get_span_context().trace_id:032x}"


def tracing_interceptor(provider: TracerProvider) -> Any:
    """The OpenTelemetry server interceptor (a grpc.aio.ServerInterceptor), first in the
    chain."""
    return aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]


def instrument_engine(engine: Engine, provider: TracerProvider) -> None:
    """Spans for the engine's statements (their text; parameters are never recorded).

    The instrumentor is once per process: a second node in the same process (tests) is not
    traced at the database level."""
    instrumentor = SQLAlchemyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # Its declared range stops before SQLAlchemy 2.1, whose engine events are unchanged.
        instrumentor.instrument(
            engine=engine, tracer_provider=provider, enable_commenter=False, skip_dep_check=True
        )
