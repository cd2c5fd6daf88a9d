"""Sign-in limits shared by every door and every node (issue 19): attempts per identity and per
source, with a progressive wait instead of a lockout; the declarants' own failure count and
lockout go.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_limits",
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("delay", sa.Integer, nullable=False),
        sa.Column("next_at", sa.BigInteger, nullable=False),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sign_in_limits_seen_at", "sign_in_limits", ["seen_at"])
    with op.batch_alter_table("declarants") as table:
        table.drop_column("locked_until")
        table.drop_column("failed_attempts")


def downgrade() -> None:
    with op.batch_alter_table("declarants") as table:
        table.add_column(
            sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0")
        )
        table.add_column(sa.Column("locked_until", sa.BigInteger, nullable=False,
                                   server_default="0"))  # fmt: skip
    op.drop_index("ix_sign_in_limits_seen_at", "sign_in_limits")
    op.drop_table("sign_in_limits")
