"""Tables of DSN deposits: the deposits, each organism's delivery of its share (the outbox) and
the returns (CCO/BAN, CRMs). File contents are not here: they are sealed files in the data
directory; a return's content is sealed in its row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from registry.kernel.metadata import metadata

deposits = Table(
    "deposits",
    metadata,
    Column("id", String(32), primary_key=True),
    # The token subject that deposited it, e.g. "declarant:12".
    Column("declarant", String(128), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("file_name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", LargeBinary(32), nullable=False),
    # RECEIVED, VALIDATED, REJECTED, ROUTED.
    Column("state", String(16), nullable=False),
    # AEE or ARE.
    Column("receipt", String(3), nullable=False),
    Column("rejection_code", String(64), nullable=False),
    Column("rejection_message", String(500), nullable=False),
    Column("norm_version", String(8), nullable=False),
    Column("nature", String(2), nullable=False),
    Column("type", String(2), nullable=False),
    Column("month", String(8), nullable=False),
    # JSON list of the declared SIRETs.
    Column("sirets", Text, nullable=False),
    Column("individuals", Integer, nullable=False),
    Column("blocking", Integer, nullable=False),
    Column("warnings", Integer, nullable=False),
    # 0 for events (routed at once, offered first), 1 for monthly declarations.
    Column("priority", Integer, nullable=False),
    # Unix milliseconds.
    Column("received_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    # W3C traceparent of the call that deposited it: validation, routing and each organism's
    # handling join that trace.
    Column("trace_parent", String(64), nullable=False, server_default=""),
    # Migration 0019. Which node's pipeline works on it until when (Unix ms; 0: nobody), and
    # how many times one took it: nodes sharing the database claim each deposit in turn
    # (FOR UPDATE SKIP LOCKED on PostgreSQL), and a deposit that keeps failing waits longer.
    Column("claimed_by", String(64), nullable=False, server_default=""),
    Column("claimed_until", BigInteger, nullable=False, server_default="0"),
    Column("claims", Integer, nullable=False, server_default="0"),
    # Migration 0020. When its sealed file and its shares were purged after the retention
    # period (Unix ms; 0: kept), once nothing of it was still owed.
    Column("purged_at", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("declarant", "request_id", name="uq_deposits_request"),
    Index("ix_deposits_declarant_sha256", "declarant", "sha256"),
    Index("ix_deposits_declarant_received", "declarant", "received_at"),
    Index("ix_deposits_state", "state"),
)

# The outbox: one row per organism concerned by a deposit, written with the deposit's ROUTED
# state in one transaction.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(140), primary_key=True),
    Column("deposit_id", String(32), ForeignKey("deposits.id"), nullable=False, index=True),
    Column("organism", String(64), nullable=False),
    # PENDING, SENT, ACKNOWLEDGED.
    Column("state", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("nature", String(2), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", LargeBinary(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_id", String(32), nullable=True),
    # Unix milliseconds; 0 when not leased.
    Column("lease_until", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("acknowledged_at", BigInteger, nullable=False),
    Column("receipt_key_id", String(64), nullable=True),
    Column("receipt_signature", LargeBinary(64), nullable=True),
    Column("trace_parent", String(64), nullable=False, server_default=""),
    # The organism's encryption key the share is sealed to; "" for a share sealed with the
    # node's own key (routed before migration 0012).
    Column("sealed_for_key_id", String(64), nullable=False, server_default=""),
    Index("ix_deliveries_offer", "organism", "state", "priority", "created_at"),
)

deposit_returns = Table(
    "deposit_returns",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("deposit_id", String(32), ForeignKey("deposits.id"), nullable=False, index=True),
    Column("declarant", String(128), nullable=False),
    Column("organism", String(64), nullable=False),
    # CCO, BAN, CRM.
    Column("kind", String(3), nullable=False),
    Column("code", String(2), nullable=False),
    # ReturnStatus number.
    Column("status", Integer, nullable=False),
    Column("request_id", String(64), nullable=True),
    # The serialized Return content and PAS rates, sealed (AES-GCM, the node's data key).
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("organism", "request_id", name="uq_deposit_returns_request"),
    Index("ix_deposit_returns_declarant", "declarant", "position"),
)
