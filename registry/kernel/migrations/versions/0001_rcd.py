"""RCD: companies, establishments, change feed counter, operations.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("siren", sa.String(9), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column(
            "name_key",
            sa.String(300).with_variant(sa.String(300, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("naf_code", sa.String(8), nullable=False),
        sa.Column("legal_category", sa.String(4), nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("creation_date", sa.Date),
        sa.Column("state_since", sa.Date),
        sa.Column("head_office_nic", sa.String(5), nullable=False),
        sa.Column("diffusion_restricted", sa.Boolean, nullable=False),
        sa.Column("row_hash", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_companies_name_key", "companies", ["name_key", "siren"])
    op.create_index("ix_companies_position", "companies", ["position"])
    op.create_table(
        "establishments",
        sa.Column("siret", sa.String(14), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("naf_code", sa.String(8), nullable=False),
        sa.Column("street_number", sa.String(10), nullable=False),
        sa.Column("street_number_suffix", sa.String(10), nullable=False),
        sa.Column("street_type", sa.String(10), nullable=False),
        sa.Column("street_name", sa.String(200), nullable=False),
        sa.Column("complement", sa.String(200), nullable=False),
        sa.Column("postal_code", sa.String(10), nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("city_code", sa.String(10), nullable=False),
        sa.Column("country", sa.String(100), nullable=False),
        sa.Column("head_office", sa.Boolean, nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("creation_date", sa.Date),
        sa.Column("state_since", sa.Date),
        sa.Column("diffusion_restricted", sa.Boolean, nullable=False),
        sa.Column("row_hash", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_establishments_position", "establishments", ["position"])
    feed = op.create_table(
        "registry_feed",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_position", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(feed, [{"id": 1, "last_position": 0}])
    op.create_table(
        "operations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("state", sa.SmallInteger, nullable=False),
        sa.Column("done_units", sa.BigInteger, nullable=False),
        sa.Column("total_units", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("request_key", sa.String(128), unique=True),
        sa.Column("result", sa.LargeBinary),
        sa.Column("error", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("operations")
    op.drop_table("registry_feed")
    op.drop_table("establishments")
    op.drop_table("companies")
