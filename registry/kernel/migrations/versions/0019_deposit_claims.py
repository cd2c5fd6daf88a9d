"""Deposits are claimed by one node's pipeline at a time.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deposits") as table:
        table.add_column(sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""))
        table.add_column(
            sa.Column("claimed_until", sa.BigInteger, nullable=False, server_default="0")
        )
        table.add_column(sa.Column("claims", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("deposits") as table:
        table.drop_column("claims")
        table.drop_column("claimed_until")
        table.drop_column("claimed_by")
