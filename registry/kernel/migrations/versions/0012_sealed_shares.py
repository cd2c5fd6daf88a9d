"""Shares sealed for their organism (issue 18): organisms publish encryption keys (X25519) in
the directory beside their signing keys, told apart by `kind`; each delivery records the key its
share is sealed to (empty: a share sealed with the node's key, routed before this revision).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organism_keys") as table:
        table.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="SIGNING"))
    with op.batch_alter_table("deliveries") as table:
        table.add_column(
            sa.Column("sealed_for_key_id", sa.String(64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as table:
        table.drop_column("sealed_for_key_id")
    op.execute(sa.text("DELETE FROM organism_keys WHERE kind <> 'SIGNING'"))
    with op.batch_alter_table("organism_keys") as table:
        table.drop_column("kind")
