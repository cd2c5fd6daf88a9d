"""Roles and statuses of accounts, portfolios, habilitations, administrative acts, bulk files.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("declarants") as table:
        table.add_column(
            sa.Column("role", sa.String(16), nullable=False, server_default="DECLARANT")
        )
        table.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="ACTIVE")
        )
        table.add_column(sa.Column("activation_hash", sa.LargeBinary(32), nullable=True))
    op.create_table(
        "portfolios",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_index("ix_portfolios_siren", "portfolios", ["siren", "name"], unique=True)
    op.create_table(
        "portfolio_establishments",
        sa.Column("portfolio_id", sa.Integer, primary_key=True),
        sa.Column("siret", sa.String(14), primary_key=True),
    )
    op.create_table(
        "portfolio_services",
        sa.Column("portfolio_id", sa.Integer, primary_key=True),
        sa.Column("service", sa.String(32), primary_key=True),
    )
    op.create_table(
        "habilitations",
        sa.Column("declarant_id", sa.Integer, primary_key=True),
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("service", sa.String(32), primary_key=True),
        sa.Column("granted_by", sa.Integer, nullable=False),
        sa.Column("granted_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_habilitations_siret", "habilitations", ["siret", "service"])
    op.create_table(
        "admin_acts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("act", sa.String(32), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_admin_acts_siren", "admin_acts", ["siren", "id"])
    op.create_table(
        "bulk_files",
        sa.Column("operation_id", sa.String(32), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False, unique=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("author", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("bulk_files", "admin_acts", "habilitations", "portfolio_services",
                  "portfolio_establishments", "portfolios"):  # fmt: skip
        op.drop_table(table)
    with op.batch_alter_table("declarants") as table:
        table.drop_column("activation_hash")
        table.drop_column("status")
        table.drop_column("role")
