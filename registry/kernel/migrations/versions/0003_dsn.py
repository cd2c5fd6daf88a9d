"""DSN deposits: deposits, deliveries (the outbox), returns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deposits",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("declarant", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("receipt", sa.String(3), nullable=False),
        sa.Column("rejection_code", sa.String(64), nullable=False),
        sa.Column("rejection_message", sa.String(500), nullable=False),
        sa.Column("norm_version", sa.String(8), nullable=False),
        sa.Column("nature", sa.String(2), nullable=False),
        sa.Column("type", sa.String(2), nullable=False),
        sa.Column("month", sa.String(8), nullable=False),
        sa.Column("sirets", sa.Text, nullable=False),
        sa.Column("individuals", sa.Integer, nullable=False),
        sa.Column("blocking", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("declarant", "request_id", name="uq_deposits_request"),
    )
    op.create_index("ix_deposits_declarant_sha256", "deposits", ["declarant", "sha256"])
    op.create_index("ix_deposits_declarant_received", "deposits", ["declarant", "received_at"])
    op.create_index("ix_deposits_state", "deposits", ["state"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(140), primary_key=True),
        sa.Column("deposit_id", sa.String(32), sa.ForeignKey("deposits.id"), nullable=False),
        sa.Column("organism", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("nature", sa.String(2), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_id", sa.String(32), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("acknowledged_at", sa.BigInteger, nullable=False),
        sa.Column("receipt_key_id", sa.String(64), nullable=True),
        sa.Column("receipt_signature", sa.LargeBinary(64), nullable=True),
    )
    op.create_index("ix_deliveries_deposit_id", "deliveries", ["deposit_id"])
    op.create_index(
        "ix_deliveries_offer", "deliveries", ["organism", "state", "priority", "created_at"]
    )
    op.create_table(
        "deposit_returns",
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("deposit_id", sa.String(32), sa.ForeignKey("deposits.id"), nullable=False),
        sa.Column("declarant", sa.String(128), nullable=False),
        sa.Column("organism", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("code", sa.String(2), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("organism", "request_id", name="uq_deposit_returns_request"),
    )
    op.create_index("ix_deposit_returns_deposit_id", "deposit_returns", ["deposit_id"])
    op.create_index("ix_deposit_returns_declarant", "deposit_returns", ["declarant", "position"])


def downgrade() -> None:
    op.drop_table("deposit_returns")
    op.drop_table("deliveries")
    op.drop_table("deposits")
