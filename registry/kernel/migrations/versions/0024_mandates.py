"""SEPA direct debit mandates (registry/mandate/schema.py): creditors and their SEPA identifier,
mandates with their IBAN sealed, the declarations each paid for, the creditors' extractions.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mandate_creditors",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("identifier", sa.String(35), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "mandates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("creditor", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(35), nullable=False),
        sa.Column("debtor", sa.String(14), nullable=False),
        sa.Column("debtor_siren", sa.String(9), nullable=False),
        sa.Column("iban_sealed", sa.LargeBinary, nullable=False),
        sa.Column("bic", sa.String(11), nullable=False),
        sa.Column("scheme", sa.SmallInteger, nullable=False),
        sa.Column("signed_on", sa.String(10), nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("acknowledged_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=False),
        sa.Column("uses", sa.BigInteger, nullable=False),
        sa.Column("last_declaration", sa.String(64), nullable=False),
        sa.Column("last_used_on", sa.String(10), nullable=False),
        sa.Column("request_key", sa.String(200), unique=True),
        sa.Column("request_digest", sa.String(64)),
        sa.UniqueConstraint("creditor", "reference", name="uq_mandates_reference"),
    )
    op.create_index("ix_mandates_debtor", "mandates", ["debtor_siren", "creditor", "reference"])
    op.create_table(
        "mandate_uses",
        sa.Column("mandate_id", sa.Integer, primary_key=True),
        sa.Column("declaration", sa.String(64), primary_key=True),
        sa.Column("used_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "mandate_extractions",
        sa.Column("operation_id", sa.String(32), primary_key=True),
        sa.Column("creditor", sa.String(64), nullable=False),
        sa.Column("running_creditor", sa.String(64), unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("purged_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mandate_extractions")
    op.drop_table("mandate_uses")
    op.drop_index("ix_mandates_debtor", "mandates")
    op.drop_table("mandates")
    op.drop_table("mandate_creditors")
