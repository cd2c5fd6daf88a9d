"""Sealed deposit files and shares in the database (PostgreSQL), shared by every node: each
blob's bytes in numbered rows of at most 1 MiB (registry/kernel/blob_store.py). Files a node
wrote before stay on its disk and are still read from there.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sealed_file_chunks",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("generation", sa.String(32), nullable=False),
        sa.Column("last", sa.Boolean, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sealed_file_chunks")
