"""The spans of each exchange, the node's and the organisms', kept for the retention period.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_spans",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("reported_by", sa.String(64), primary_key=True),
        sa.Column("parent_id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
    )
    op.create_index("ix_trace_spans_end", "trace_spans", ["end_ns"])


def downgrade() -> None:
    op.drop_index("ix_trace_spans_end", "trace_spans")
    op.drop_table("trace_spans")
