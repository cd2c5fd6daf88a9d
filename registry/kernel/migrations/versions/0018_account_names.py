"""Accounts keep their names, sealed, for their company's administrators.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("declarants") as table:
        table.add_column(sa.Column("names_sealed", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("declarants") as table:
        table.drop_column("names_sealed")
