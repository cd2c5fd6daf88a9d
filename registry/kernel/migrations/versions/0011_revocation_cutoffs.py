"""Revocations become a published list: besides revoked blocks, a subject's cutoff (every block
of the subject that starts before `before` is revoked), and `until`, after which a row revokes
nothing any more and is pruned.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Blocks revoked before this migration: a chain lives an hour at most, a day is ample.
_OLD_ROWS_KEPT_SECONDS = 86400


def upgrade() -> None:
    with op.batch_alter_table("revocations") as table:
        table.alter_column("revocation_id", existing_type=sa.LargeBinary(32), nullable=True)
        table.add_column(sa.Column("subject", sa.String(128), nullable=True))
        table.add_column(sa.Column("before", sa.BigInteger, nullable=True))
        table.add_column(sa.Column("until", sa.BigInteger, nullable=False, server_default="0"))
        table.create_index("ix_revocations_until", ["until"])
        table.create_index("ix_revocations_subject", ["subject"])
    revocations = sa.table(
        "revocations", sa.column("until", sa.BigInteger), sa.column("revoked_at", sa.BigInteger)
    )
    kept_until = revocations.c.revoked_at + _OLD_ROWS_KEPT_SECONDS
    op.execute(revocations.update().values(until=kept_until))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM revocations WHERE revocation_id IS NULL"))
    with op.batch_alter_table("revocations") as table:
        table.drop_index("ix_revocations_subject")
        table.drop_index("ix_revocations_until")
        table.drop_column("until")
        table.drop_column("before")
        table.drop_column("subject")
        table.alter_column("revocation_id", existing_type=sa.LargeBinary(32), nullable=False)
