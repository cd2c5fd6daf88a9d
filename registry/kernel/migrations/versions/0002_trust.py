"""Trust directory and identity: organisms, keys, grants, declarants, revocations, spent tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisms",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("endpoints", sa.Text, nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "organism_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("organism", sa.String(64), sa.ForeignKey("organisms.code"), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("valid_from", sa.BigInteger, nullable=False),
        sa.Column("valid_until", sa.BigInteger, nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_organism_keys_organism", "organism_keys", ["organism"])
    op.create_table(
        "organism_grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("organism", sa.String(64), sa.ForeignKey("organisms.code"), nullable=False),
        sa.Column("right_name", sa.String(64), nullable=False),
        sa.Column("siren", sa.String(9), nullable=True),
        sa.UniqueConstraint("organism", "right_name", "siren", name="uq_organism_grants"),
    )
    op.create_index("ix_organism_grants_organism", "organism_grants", ["organism"])
    op.create_table(
        "declarants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("identity_digest", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("siret", sa.String(14), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "declarant_grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("declarant_id", sa.Integer, sa.ForeignKey("declarants.id"), nullable=False),
        sa.Column("right_name", sa.String(64), nullable=False),
        sa.Column("siren", sa.String(9), nullable=True),
        sa.UniqueConstraint("declarant_id", "right_name", "siren", name="uq_declarant_grants"),
    )
    op.create_index("ix_declarant_grants_declarant_id", "declarant_grants", ["declarant_id"])
    op.create_table(
        "revocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("revocation_id", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "spent_tokens",
        sa.Column("digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("until", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_spent_tokens_until", "spent_tokens", ["until"])


def downgrade() -> None:
    for table in ("spent_tokens", "revocations", "declarant_grants", "declarants",
                  "organism_grants", "organism_keys", "organisms"):  # fmt: skip
        op.drop_table(table)
