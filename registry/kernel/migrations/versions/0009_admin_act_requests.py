"""Administrative acts remember the caller's request id, so that a retried creation answers
with what the first one made.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admin_acts") as table:
        table.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    op.create_index(
        "ix_admin_acts_request", "admin_acts", ["siren", "request_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_admin_acts_request", table_name="admin_acts")
    with op.batch_alter_table("admin_acts") as table:
        table.drop_column("request_id")
