"""Tables of notifications: subscriptions, contacts (e-mail addresses and
whether they bounced), templates by version, notifications per company, their deliveries per
channel (the outbox, with retries), acknowledgements, single-use e-mail links."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from registry.kernel.metadata import metadata

notify_subscriptions = Table(
    "notify_subscriptions",
    metadata,
    Column("siren", String(9), primary_key=True),
    # Topic name without its prefix: "AT_MP_RATE", ...
    Column("topic", String(32), primary_key=True),
    # Comma-separated channel names: "EMAIL,API".
    Column("channels", String(64), nullable=False),
    Column("email", String(254), nullable=False),
    Index("ix_notify_subscriptions_topic", "topic"),
)

# One row per address: a bounce or expiry is recorded here once, and every sending reads it.
notify_contacts = Table(
    "notify_contacts",
    metadata,
    Column("email", String(254), primary_key=True),
    Column("flagged", Integer, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("changed_at", BigInteger, nullable=False),
)

notify_templates = Table(
    "notify_templates",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("topic", String(32), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

notify_sends = Table(
    "notify_sends",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("notifications", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("siren", String(9), nullable=False),
    Column("topic", String(32), nullable=False),
    Column("template", String(64), nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("official", Integer, nullable=False),
    # Unix milliseconds; 0: none.
    Column("deadline", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # The strongest acknowledgement: 0 none, 1 delivered, 2 received, 3 authenticated.
    Column("state", Integer, nullable=False),
    # 0: not on the API channel (yet); 1: held there, until acknowledged; 2: acknowledged.
    Column("fetched", Integer, nullable=False),
    # Held ones: handed over to a caller until then (Unix milliseconds; 0: not leased), and
    # how many times they were handed over.
    Column("lease_until", BigInteger, nullable=False, server_default="0"),
    Column("handovers", Integer, nullable=False, server_default="0"),
    Index("ix_notifications_siren", "siren", "created_at"),
    Index("ix_notifications_overdue", "official", "state", "deadline"),
    Index("ix_notifications_unfetched", "fetched", "created_at", "id"),
)

notify_deliveries = Table(
    "notify_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String(32), nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    # PENDING, SENDING (claimed by a dispatcher), RETRYING, DELIVERED, DEAD.
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", String(300), nullable=False),
    Column("email", String(254), nullable=False),
    # Who is attempting it (a random token per claim); SENDING rows whose next_attempt_at has
    # passed were left by a dispatcher that stopped, and are claimed again.
    Column("claim", String(32), nullable=False, server_default=""),
    Index("ix_notify_deliveries_due", "state", "next_attempt_at"),
    Index("ix_notify_deliveries_claim", "claim"),
)

notify_acks = Table(
    "notify_acks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String(32), nullable=False, index=True),
    Column("kind", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("trace_id", String(32), nullable=False),
)

# E-mail links: only the SHA-256 of the reference is kept; a reference opens once.
notify_links = Table(
    "notify_links",
    metadata,
    Column("reference_hash", LargeBinary(32), primary_key=True),
    Column("notification_id", String(32), nullable=False),
    Column("used_at", BigInteger, nullable=False),
)
