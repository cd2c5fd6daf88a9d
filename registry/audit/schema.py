"""Tables of the audit journal: append-only records, hash-chained, and the signed checkpoints."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from registry.kernel.metadata import metadata

audit_records = Table(
    "audit_records",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=True),
    # One hash chain per node process: "<root key id>/<start>/<random>".
    Column("journal", String(100), nullable=False),
    Column("seq", BigInteger, nullable=False),
    # Unix milliseconds.
    Column("at", BigInteger, nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("chain_id", String(64), nullable=False),
    # The token's subject ("organism:URSSAF", "declarant:12"); never a name.
    Column("subject", String(128), nullable=False),
    # The chain of responsibility: "|ISSUER|HOLDER|...|" (for LIKE queries).
    Column("organisms", Text, nullable=False),
    Column("service", String(128), nullable=False),
    Column("method", String(128), nullable=False),
    # What the call was about, e.g. "deposit:3f2a...", "siret:10000000900017".
    Column("resource", String(200), nullable=False),
    Column("siret", String(14), nullable=False),
    # "OK", or the status code and reason, e.g. "UNAUTHENTICATED:EXPIRED".
    Column("outcome", String(100), nullable=False),
    # SHA-256 (hex) of the serialized request and response; empty for streams.
    Column("request_digest", String(64), nullable=False),
    Column("response_digest", String(64), nullable=False),
    # Comma-separated: "replay", "repeated-failures".
    Column("flags", String(100), nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    # Not unique on purpose: the chain proves order and uniqueness, and a verifier must see a
    # duplicated record, not a database refusing it.
    Index("ix_audit_records_seq", "journal", "seq"),
    Index("ix_audit_records_trace", "trace_id"),
    Index("ix_audit_records_chain", "chain_id"),
    Index("ix_audit_records_siret", "siret"),
    Index("ix_audit_records_at", "at"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("journal", String(100), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("hash", LargeBinary(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
)
