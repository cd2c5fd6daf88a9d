"""Table of long-running operations: state, progress, result and error of each."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, SmallInteger, String, Table

from registry.kernel.metadata import metadata

operations = Table(
    "operations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("done_units", BigInteger, nullable=False),
    Column("total_units", BigInteger, nullable=False),
    Column("unit", String(16), nullable=False),
    # A caller's retry key, unique per kind: the same request id answers with the same operation.
    Column("request_key", String(128), unique=True),
    # Serialized google.protobuf.Any (the result) and google.rpc.Status (the error).
    Column("result", LargeBinary),
    Column("error", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
