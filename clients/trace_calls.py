"""Calls of interops.trace.v1.TraceService, written once for both clients (clients/calls.py):
one trace's spans in tree order, and the traces of a deposit, a SIRET or a token chain."""

from __future__ import annotations

from interops.trace.v1 import trace_pb2

from clients.calls import Steps, Unary


def get_trace(trace_id: str) -> Steps[list[trace_pb2.Span]]:
    """The spans the node keeps of a trace, in tree order (each with its depth)."""
    answer = yield Unary(trace_pb2.GetTraceRequest(trace_id=trace_id))
    return list(answer.spans)


def search_traces(
    deposit_id: str = "", siret: str = "", chain_id: str = "", max_traces: int = 0
) -> Steps[list[trace_pb2.TraceSummary]]:
    """The traces the audit journal links to a deposit, a SIRET or a chain, most recent first."""
    request = trace_pb2.SearchTracesRequest(
        deposit_id=deposit_id, siret=siret, chain_id=chain_id, max_traces=max_traces
    )
    answer = yield Unary(request)
    return list(answer.traces)
