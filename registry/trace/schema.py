"""Table of the spans the node keeps: its own, and those organisms send it over OTLP."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, SmallInteger, String, Table, Text

from registry.kernel.metadata import metadata

trace_spans = Table(
    "trace_spans",
    metadata,
    # W3C ids in lower-case hex. The organism that reported a span is part of its key: one
    # organism cannot shadow another's span (nor the node's) by sending the same ids.
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    # The organism code whose authenticated call delivered the span, or "node".
    Column("reported_by", String(64), primary_key=True),
    Column("parent_id", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    # OTLP's SpanKind numbers: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    Column("kind", SmallInteger, nullable=False),
    # The reporting process's service.name.
    Column("service", String(100), nullable=False),
    # Unix nanoseconds.
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    # OTLP's status code: 0 unset, 1 ok, 2 error (never its description: it may name anyone).
    Column("status", SmallInteger, nullable=False),
    # A JSON object of the allowed attributes only (server/trace/attributes.py).
    Column("attributes", Text, nullable=False),
    Index("ix_trace_spans_end", "end_ns"),
)
