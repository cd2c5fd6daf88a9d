"""Tables of SEPA mandates (migration 0024): the creditors with their SEPA identifier, the
mandates (the IBAN sealed with the node's data key, never in clear), each declaration a mandate
paid for, and which creditor each extraction belongs to."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from registry.kernel.metadata import metadata

mandate_creditors = Table(
    "mandate_creditors",
    metadata,
    # The organism's code in the trust directory.
    Column("code", String(64), primary_key=True),
    # The SEPA creditor identifier (ICS), compact.
    Column("identifier", String(35), nullable=False),
    Column("name", String(200), nullable=False),
    # Its postal address, printed on mandates (lines joined by newlines; "" unknown).
    Column("address", String(300), nullable=False),
    Column("changed_at", BigInteger, nullable=False),
)

mandates = Table(
    "mandates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("creditor", String(64), nullable=False),
    # The unique mandate reference (RUM), unique per creditor.
    Column("reference", String(35), nullable=False),
    # SIREN or SIRET; its first 9 digits in debtor_siren, for a company's search.
    Column("debtor", String(14), nullable=False),
    Column("debtor_siren", String(9), nullable=False),
    # nonce || AES-256-GCM(IBAN), bound to creditor and reference (registry/kernel/sealing.py).
    Column("iban_sealed", LargeBinary, nullable=False),
    Column("bic", String(11), nullable=False),
    # interops.mandate.v1.Scheme and MandateState numbers.
    Column("scheme", SmallInteger, nullable=False),
    Column("signed_on", String(10), nullable=False),
    Column("state", SmallInteger, nullable=False),
    # Unix milliseconds; 0: not yet.
    Column("created_at", BigInteger, nullable=False),
    Column("acknowledged_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=False),
    Column("uses", BigInteger, nullable=False),
    Column("last_declaration", String(64), nullable=False),
    # The day of the last use (YYYY-MM-DD, "" never used): 36 months after it (or after the
    # signature) an unused mandate has lapsed, computed when read.
    Column("last_used_on", String(10), nullable=False),
    # The author's retry key ("subject:request id"), unique: the same request, the same mandate.
    Column("request_key", String(200), unique=True),
    # HMAC (data key) of the request's fields: the same key with other fields is refused.
    Column("request_digest", String(64)),
    UniqueConstraint("creditor", "reference", name="uq_mandates_reference"),
    Index("ix_mandates_debtor", "debtor_siren", "creditor", "reference"),
)

mandate_uses = Table(
    "mandate_uses",
    metadata,
    Column("mandate_id", Integer, primary_key=True),
    Column("declaration", String(64), primary_key=True),
    Column("used_at", BigInteger, nullable=False),
)

mandate_extractions = Table(
    "mandate_extractions",
    metadata,
    # The operation's id (registry/operation).
    Column("operation_id", String(32), primary_key=True),
    Column("creditor", String(64), nullable=False),
    # The creditor while its extraction runs, NULL once done: one running extraction each.
    Column("running_creditor", String(64), unique=True),
    # Unix milliseconds; purged_at: when its file was deleted (0: kept).
    Column("created_at", BigInteger, nullable=False),
    Column("purged_at", BigInteger, nullable=False),
)
