"""PostgreSQL NOTIFY on the rows followed streams and workers wait for.

Nodes sharing one PostgreSQL database wake each other through LISTEN/NOTIFY
(registry/kernel/change_feed.py). Triggers send, so that no writer has to: every write path,
today's and tomorrow's, is covered. A payload is only a key that says who should look again
(a deposit or operation id, an organism code, a declarant's token subject, a SIREN) or nothing
(everybody on the channel looks again): never a name, a NIR or a file's content. Notifications
are sent at commit, and identical ones of one transaction are sent once.

SQLite (one node) has no triggers here: its node feeds the same waiters from its own commits.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# One function for the row triggers: the channel, and the column whose value is the payload
# (none: an empty payload).
_ROW_FUNCTION = """
CREATE FUNCTION interops_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        TG_ARGV[0], CASE WHEN TG_NARGS > 1 THEN to_jsonb(NEW) ->> TG_ARGV[1] ELSE '' END
    );
    RETURN NULL;
END $$
"""

# Notifications are updated by the thousand (a fan-out to every company): one statement
# trigger sends the SIRENs whose notifications became available on the API channel (held, or
# released from a lease), or one empty payload when more than 64 companies are concerned.
_NOTIFICATIONS_FUNCTION = """
CREATE FUNCTION interops_notify_held() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sirens text[];
BEGIN
    SELECT array_agg(siren) INTO sirens FROM (
        SELECT DISTINCT new_rows.siren FROM new_rows JOIN old_rows ON old_rows.id = new_rows.id
        WHERE new_rows.fetched = 1
          AND (old_rows.fetched <> 1 OR new_rows.lease_until < old_rows.lease_until)
        LIMIT 65
    ) AS concerned;
    IF sirens IS NULL THEN
        RETURN NULL;
    ELSIF cardinality(sirens) > 64 THEN
        PERFORM pg_notify('interops_notification', '');
    ELSE
        PERFORM pg_notify('interops_notification', siren) FROM unnest(sirens) AS siren;
    END IF;
    RETURN NULL;
END $$
"""

# (trigger, table, events, condition, arguments of interops_notify_row)
_ROW_TRIGGERS = (
    # A deposit followed by its declarant: every change bumps its version.
    (
        "interops_deposit_changed",
        "deposits",
        "UPDATE",
        "OLD.version IS DISTINCT FROM NEW.version",
        "'interops_deposit', 'id'",
    ),
    # Work for the DSN pipelines of every node.
    (
        "interops_deposit_to_process",
        "deposits",
        "INSERT",
        "NEW.state IN ('RECEIVED', 'VALIDATED')",
        "'interops_dsn_work'",
    ),
    # An organism's new share (its code), a declarant's new return (its token subject).
    ("interops_delivery_routed", "deliveries", "INSERT", "", "'interops_delivery', 'organism'"),
    ("interops_return_added", "deposit_returns", "INSERT", "", "'interops_return', 'declarant'"),
    # A send: deliveries for the notification dispatchers of every node.
    ("interops_notify_sent", "notify_sends", "INSERT", "", "'interops_notify_send'"),
    (
        "interops_operation_changed",
        "operations",
        "INSERT OR UPDATE",
        "",
        "'interops_operation', 'id'",
    ),
    ("interops_bulk_file_queued", "bulk_files", "INSERT", "", "'interops_bulk_file'"),
    # The registry's change feed moved on (its one counter row).
    ("interops_registry_changed", "registry_feed", "UPDATE", "", "'interops_registry'"),
)


def _on_postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    if not _on_postgresql():
        return
    op.execute(_ROW_FUNCTION)
    op.execute(_NOTIFICATIONS_FUNCTION)
    for name, table, events, condition, arguments in _ROW_TRIGGERS:
        when = f" WHEN ({condition})" if condition else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON {table} FOR EACH ROW{when} "
            f"EXECUTE FUNCTION interops_notify_row({arguments})"
        )
    op.execute(
        "CREATE TRIGGER interops_notification_held AFTER UPDATE ON notifications "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION interops_notify_held()"
    )


def downgrade() -> None:
    if not _on_postgresql():
        return
    op.execute("DROP TRIGGER IF EXISTS interops_notification_held ON notifications")
    for name, table, *_ in _ROW_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS interops_notify_held()")
    op.execute("DROP FUNCTION IF EXISTS interops_notify_row()")
