"""Sign-in limits per identity and source (the attacker review of issue 19): a stranger's
failures make only the stranger's address wait, so each identity's rows from each source carry
the digest of the identity's own row, for a success or an unlock to clear them all. The counts
kept so far meant something else (one per identity from all sources): they are forgotten.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM sign_in_limits")
    with op.batch_alter_table("sign_in_limits") as table:
        table.add_column(sa.Column("identity", sa.LargeBinary(32), nullable=True))
    op.create_index("ix_sign_in_limits_identity", "sign_in_limits", ["identity"])


def downgrade() -> None:
    op.execute("DELETE FROM sign_in_limits")
    op.drop_index("ix_sign_in_limits_identity", "sign_in_limits")
    with op.batch_alter_table("sign_in_limits") as table:
        table.drop_column("identity")
