"""The audit journal: hash-chained records and signed checkpoints.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("journal", sa.String(100), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("organisms", sa.Text, nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("siret", sa.String(14), nullable=False),
        sa.Column("outcome", sa.String(100), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("response_digest", sa.String(64), nullable=False),
        sa.Column("flags", sa.String(100), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_audit_records_seq", "audit_records", ["journal", "seq"])
    op.create_index("ix_audit_records_trace", "audit_records", ["trace_id"])
    op.create_index("ix_audit_records_chain", "audit_records", ["chain_id"])
    op.create_index("ix_audit_records_siret", "audit_records", ["siret"])
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("journal", sa.String(100), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_records")
