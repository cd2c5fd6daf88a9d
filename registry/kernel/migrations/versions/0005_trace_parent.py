"""The W3C trace context of each deposit, carried on to its deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("deposits", "deliveries"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("trace_parent", sa.String(64), nullable=False, server_default="")
            )


def downgrade() -> None:
    for table in ("deliveries", "deposits"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("trace_parent")
