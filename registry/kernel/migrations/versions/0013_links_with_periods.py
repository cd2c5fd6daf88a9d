"""Who manages whom, and for how long (issue 19): a declared link ends when another firm declares
the establishment for a later period (`ended_period`, `ended_by`); each employment remembers the
firms that declared it (`employment_declarants`), so a firm reads only what it declared; a
company's explicit mandates to a firm (`firm_mandates`); an account's e-mail (sealed), whether its
registration is proven (postal letter key or an administrator's validation) and its e-mail
confirmed, its secret question and a pending password reset.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("declared_links") as table:
        table.add_column(sa.Column("ended_period", sa.String(6), nullable=False, server_default=""))
        table.add_column(sa.Column("ended_by", sa.String(14), nullable=False, server_default=""))
    op.create_table(
        "employment_declarants",
        sa.Column("employment_id", sa.Integer, primary_key=True),
        sa.Column("declarant_siret", sa.String(14), primary_key=True),
        sa.Column("first_period", sa.String(6), nullable=False),
        sa.Column("last_period", sa.String(6), nullable=False),
    )
    op.create_index(
        "ix_employment_declarants_declarant",
        "employment_declarants",
        ["declarant_siret", "employment_id"],
    )
    op.create_table(
        "firm_mandates",
        sa.Column("client_siret", sa.String(14), primary_key=True),
        sa.Column("firm_siren", sa.String(9), primary_key=True),
        sa.Column("granted_by", sa.Integer, nullable=False),
        sa.Column("granted_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_firm_mandates_firm", "firm_mandates", ["firm_siren", "client_siret"])
    with op.batch_alter_table("declarants") as table:
        table.add_column(sa.Column("email_sealed", sa.LargeBinary, nullable=True))
        table.add_column(
            sa.Column("email_verified", sa.Boolean, nullable=False, server_default=sa.true())
        )
        table.add_column(sa.Column("email_code_hash", sa.LargeBinary(32), nullable=True))
        table.add_column(sa.Column("proven", sa.Boolean, nullable=False, server_default=sa.true()))
        table.add_column(
            sa.Column("secret_question", sa.String(200), nullable=False, server_default="")
        )
        table.add_column(
            sa.Column("secret_answer_hash", sa.String(200), nullable=False, server_default="")
        )
        table.add_column(sa.Column("reset_hash", sa.LargeBinary(32), nullable=True))
        table.add_column(
            sa.Column("reset_expires", sa.BigInteger, nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("declarants") as table:
        for column in ("reset_expires", "reset_hash", "secret_answer_hash", "secret_question",
                       "proven", "email_code_hash", "email_verified", "email_sealed"):  # fmt: skip
            table.drop_column(column)
    op.drop_index("ix_firm_mandates_firm", "firm_mandates")
    op.drop_table("firm_mandates")
    op.drop_index("ix_employment_declarants_declarant", "employment_declarants")
    op.drop_table("employment_declarants")
    with op.batch_alter_table("declared_links") as table:
        table.drop_column("ended_by")
        table.drop_column("ended_period")
