"""Tables of habilitations: each account's role and status (on `declarants`, migration 0008),
portfolios of establishments with the services added to them, habilitations (a declarant's right
to use a service for an establishment), the administrative acts with their author, and bulk
files waiting to be processed in order."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from registry.kernel.metadata import metadata

portfolios = Table(
    "portfolios",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("siren", String(9), nullable=False),
    Column("name", String(100), nullable=False),
    # COMPANY (the company's own, one per company) or CLIENTS.
    Column("kind", String(16), nullable=False),
    Index("ix_portfolios_siren", "siren", "name", unique=True),
)

portfolio_establishments = Table(
    "portfolio_establishments",
    metadata,
    Column("portfolio_id", Integer, primary_key=True),
    Column("siret", String(14), primary_key=True),
)

portfolio_services = Table(
    "portfolio_services",
    metadata,
    Column("portfolio_id", Integer, primary_key=True),
    Column("service", String(32), primary_key=True),
)

habilitations = Table(
    "habilitations",
    metadata,
    Column("declarant_id", Integer, primary_key=True),
    Column("siret", String(14), primary_key=True),
    Column("service", String(32), primary_key=True),
    Column("granted_by", Integer, nullable=False),
    Column("granted_at", BigInteger, nullable=False),
    Index("ix_habilitations_siret", "siret", "service"),
)

admin_acts = Table(
    "admin_acts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("siren", String(9), nullable=False),
    # The author's subject ("declarant:12", "activation-key", "registration").
    Column("author", String(64), nullable=False),
    Column("act", String(32), nullable=False),
    Column("target", String(64), nullable=False),
    Column("detail", String(500), nullable=False),
    Column("at", BigInteger, nullable=False),
    # The caller's retry key of a creation (migration 0009): a retry answers with its target.
    Column("request_id", String(64)),
    Index("ix_admin_acts_siren", "siren", "id"),
    Index("ix_admin_acts_request", "siren", "request_id", unique=True),
)

# A company's explicit mandate to a firm for one of its establishments (migration 0013): the firm
# may put it in a portfolio and deposit for it even after another firm declared it.
firm_mandates = Table(
    "firm_mandates",
    metadata,
    Column("client_siret", String(14), primary_key=True),
    Column("firm_siren", String(9), primary_key=True),
    # The client company's administrator who granted it, and when (ms).
    Column("granted_by", Integer, nullable=False),
    Column("granted_at", BigInteger, nullable=False),
    # 0 while it lasts; when it ended (ms).
    Column("ended_at", BigInteger, nullable=False),
    Index("ix_firm_mandates_firm", "firm_siren", "client_siret"),
)

# Bulk files: processed one after the other per company, in the order received.
bulk_files = Table(
    "bulk_files",
    metadata,
    Column("operation_id", String(32), primary_key=True),
    Column("position", Integer, nullable=False, unique=True),
    Column("siren", String(9), nullable=False),
    Column("author", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    # PENDING, RUNNING, DONE
    Column("state", String(16), nullable=False),
    Column("report", Text, nullable=False),
    # Migration 0020. The node applying a RUNNING file, and until when (Unix ms) its claim
    # holds unless renewed: a file whose node died is taken again once its claim runs out.
    Column("claimed_by", String(64), nullable=False, server_default=""),
    Column("claimed_until", BigInteger, nullable=False, server_default="0"),
)
