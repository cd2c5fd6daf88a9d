"""Declared links and employments.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "declared_links",
        sa.Column("declarant_siret", sa.String(14), primary_key=True),
        sa.Column("declared_siret", sa.String(14), primary_key=True),
        sa.Column("first_period", sa.String(6), nullable=False),
        sa.Column("last_period", sa.String(6), nullable=False),
        sa.Column("last_deposit", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_declared_links_declared", "declared_links", ["declared_siret", "declarant_siret"]
    )
    op.create_table(
        "employments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("siret", sa.String(14), nullable=False),
        sa.Column("nir_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("nir_key", sa.String(16), nullable=False),
        sa.Column("nir_sealed", sa.LargeBinary(64), nullable=False),
        sa.Column("contract_start", sa.String(8), nullable=False),
        sa.Column("contract_end", sa.String(8), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_employments_nir", "employments", ["nir_hash", "siret"])
    op.create_index("ix_employments_siret", "employments", ["siret", "id"])


def downgrade() -> None:
    op.drop_table("employments")
    op.drop_table("declared_links")
