"""Notifications on the API channel are leased to the caller until the company acknowledges
them: the lease's end, and how many times each was handed over.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as table:
        table.add_column(
            sa.Column("lease_until", sa.BigInteger, nullable=False, server_default="0")
        )
        table.add_column(sa.Column("handovers", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as table:
        table.drop_column("handovers")
        table.drop_column("lease_until")
