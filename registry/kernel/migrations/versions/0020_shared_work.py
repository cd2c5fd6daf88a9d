"""Bulk habilitation files are claimed by one node at a time, with a claim that runs out;
deposits remember when their files were purged.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deposits") as table:
        table.add_column(sa.Column("purged_at", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("bulk_files") as table:
        table.add_column(sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""))
        table.add_column(
            sa.Column("claimed_until", sa.BigInteger, nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("bulk_files") as table:
        table.drop_column("claimed_until")
        table.drop_column("claimed_by")
    with op.batch_alter_table("deposits") as table:
        table.drop_column("purged_at")
