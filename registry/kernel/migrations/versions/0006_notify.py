"""Notifications and nomenclatures.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_subscriptions",
        sa.Column("siren", sa.String(9), primary_key=True),
        sa.Column("topic", sa.String(32), primary_key=True),
        sa.Column("channels", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
    )
    op.create_index("ix_notify_subscriptions_topic", "notify_subscriptions", ["topic"])
    op.create_table(
        "notify_contacts",
        sa.Column("email", sa.String(254), primary_key=True),
        sa.Column("flagged", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notify_templates",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notify_sends",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("notifications", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("siren", sa.String(9), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("template_version", sa.Integer, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("official", sa.Integer, nullable=False),
        sa.Column("deadline", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Integer, nullable=False),
        sa.Column("fetched", sa.Integer, nullable=False),
    )
    op.create_index("ix_notifications_siren", "notifications", ["siren", "created_at"])
    op.create_index(
        "ix_notifications_overdue", "notifications", ["official", "state", "deadline"]
    )
    op.create_index(
        "ix_notifications_unfetched", "notifications", ["fetched", "created_at", "id"]
    )
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.String(300), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("claim", sa.String(32), nullable=False, server_default=""),
    )
    op.create_index("ix_notify_deliveries_claim", "notify_deliveries", ["claim"])
    op.create_index(
        "ix_notify_deliveries_notification_id", "notify_deliveries", ["notification_id"]
    )
    op.create_index("ix_notify_deliveries_due", "notify_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "notify_acks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
    )
    op.create_index("ix_notify_acks_notification_id", "notify_acks", ["notification_id"])
    op.create_table(
        "notify_links",
        sa.Column("reference_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("notification_id", sa.String(32), nullable=False),
        sa.Column("used_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "nomenclature_versions",
        sa.Column("table_name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("published_at", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_table(
        "nomenclature_codes",
        sa.Column("table_name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(500), nullable=False),
    )


def downgrade() -> None:
    for table in ("nomenclature_codes", "nomenclature_versions", "notify_links", "notify_acks",
                  "notify_deliveries", "notifications", "notify_sends", "notify_templates",
                  "notify_contacts", "notify_subscriptions"):  # fmt: skip
        op.drop_table(table)
