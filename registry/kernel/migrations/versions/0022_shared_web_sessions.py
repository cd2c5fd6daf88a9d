"""Web sessions in the database, shared by every node's web adapter.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("signed_in", sa.SmallInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_web_sessions_expires", "web_sessions", ["expires"])
    op.create_index("ix_web_sessions_created", "web_sessions", ["created"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_created", "web_sessions")
    op.drop_index("ix_web_sessions_expires", "web_sessions")
    op.drop_table("web_sessions")
