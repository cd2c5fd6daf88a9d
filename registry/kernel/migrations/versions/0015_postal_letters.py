"""Postal letters (issue 19): a channel of their own for the secrets mailed to an establishment's
address in the RCD (activation keys, password-reset codes): the address and the text sealed
with the node's at-rest key, the state (PENDING, PRINTED, SENT, DELIVERED, RETURNED), the
printing batch and the post's tracking number.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postal_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("siret", sa.String(14), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipient_sealed", sa.LargeBinary, nullable=False),
        sa.Column("body_sealed", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("tracking", sa.String(64), nullable=False),
        sa.Column("state_changed_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_postal_letters_state", "postal_letters", ["state", "id"])
    op.create_index("ix_postal_letters_batch", "postal_letters", ["batch_id", "id"])
    op.create_index("ix_postal_letters_siret", "postal_letters", ["siret", "id"])


def downgrade() -> None:
    op.drop_index("ix_postal_letters_siret", "postal_letters")
    op.drop_index("ix_postal_letters_batch", "postal_letters")
    op.drop_index("ix_postal_letters_state", "postal_letters")
    op.drop_table("postal_letters")
