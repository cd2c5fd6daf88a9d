"""Storage of notifications: subscriptions, contacts, templates, sending (one notification per
company and one delivery per channel, written together), the delivery outbox with retries and
exponential backoff, acknowledgements and single-use e-mail links.

Sending and its idempotence are one transaction: a request id already recorded sends nothing;
a crash before the commit sends nothing; after it, every delivery is in the outbox.
"""

from __future__ import annotations

import enum
import hashlib
import re
import string
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interops.notify.v1 import notify_pb2
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)

from registry.kernel.clock import now_ms
from registry.kernel.contract_enums import contract_value
from registry.kernel.database import reading
from registry.notify.schema import (
    notifications,
    notify_acks,
    notify_contacts,
    notify_deliveries,
    notify_links,
    notify_sends,
    notify_subscriptions,
    notify_templates,
)


class DeliveryState(enum.StrEnum):
    """Where one channel's delivery of a notification stands; stored as its name, sent as
    interops.notify.v1.DeliveryState."""

    PENDING = "PENDING"
    # Claimed by a dispatcher, until its claim's lease ends.
    SENDING = "SENDING"
    RETRYING = "RETRYING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"

    def to_proto(self) -> notify_pb2.DeliveryState.ValueType:
        """The contract's number for this state."""
        return contract_value(notify_pb2.DeliveryState, self.name)


class AckKind(enum.IntEnum):
    """An acknowledgement, weakest first (a notification's state is the strongest it got, 0
    for none); stored and sent as the number of interops.notify.v1.AckKind."""

    DELIVERED = notify_pb2.ACK_KIND_DELIVERED
    RECEIVED = notify_pb2.ACK_KIND_RECEIVED
    AUTHENTICATED = notify_pb2.ACK_KIND_AUTHENTICATED


# notifications.fetched: not (yet) on the API channel, held there for fetching, fetched.
NOT_HELD, FETCHABLE, FETCHED = 0, 1, 2
_BATCH = 5_000
# The channels a notification can go on (the contract's, without their prefix), and those of a
# company that did not subscribe to the topic.
CHANNELS = tuple(
    name.removeprefix("CHANNEL_")
    for name in notify_pb2.Channel.keys()  # noqa: SIM118 -- an enum wrapper, not a dict
    if name != "CHANNEL_UNSPECIFIED"
)
DEFAULT_CHANNELS = "API,DASHBOARD"
# The channels that hold notifications in the node for their companies to fetch or see.
HELD_CHANNELS = ("API", "DASHBOARD")

# Scratch tables of one sending, in its transaction: the recipients with their new ids, and
# the SIRENs a sender named.
_FANOUT = Table(
    "notify_fanout",
    MetaData(),
    Column("id", String(32), primary_key=True),
    Column("siren", String(9), nullable=False),
    Column("channels", String(64), nullable=False),
    Column("email", String(254), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_TARGETS = Table(
    "notify_targets",
    MetaData(),
    Column("siren", String(9), primary_key=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def _temporary(table: Table, connection: Connection) -> Table:
    """Creates a scratch table afresh (on SQLite, one a failed sending left is dropped)."""
    if connection.dialect.name != "postgresql":
        table.drop(connection, checkfirst=True)
    table.create(connection)
    return table


def _new_id(dialect: str) -> ColumnElement[str]:
    """A new random notification id of 32 hex digits, made by the database."""
    if dialect == "postgresql":  # a UUID v4, as uuid.uuid4().hex
        return func.replace(cast(func.gen_random_uuid(), String), "-", "")
    return func.lower(func.hex(func.randomblob(16)))


def _bulk_insert(connection: Connection, table: Table, rows: Sequence[tuple[object, ...]]) -> None:
    """Many rows into a table: COPY on PostgreSQL, one prepared statement on SQLite."""
    if not rows:
        return
    names = table.c.keys()
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.close()
    else:
        connection.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])


# Deliveries still to attempt (SENDING ones are due again once their claim's lease ends).
_WAITING = (DeliveryState.PENDING, DeliveryState.RETRYING, DeliveryState.SENDING)


class TemplateError(ValueError):
    """A template that cannot be rendered with the values given."""


class ContactRefused(ValueError):
    """A subscription or contact change refused: `reason` is a stable code, `message` says
    why, `detail` what is wrong with the address."""

    def __init__(self, reason: str, message: str, detail: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail


_PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def placeholders_of(text: str) -> set[str]:
    """The {names} of a template's text. Only plain names: a format spec, a conversion, an
    attribute or an index ({a:{b}}, {a!r}, {a.b}, {a[0]}) is a TemplateError, so that a sender
    cannot make rendering reach into objects or build huge texts; {{ and }} are braces."""
    found = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:  # a lone { or }
        raise TemplateError(f"unbalanced braces: {error}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion or not _PLACEHOLDER.fullmatch(field):
            raise TemplateError(f"placeholders are plain {{name}}s, not {{{field}...}}")
        found.add(field)
    return found


@dataclass(frozen=True)
class TemplateRecord:
    """A version of a template."""

    name: str
    version: int
    topic: str
    subject: str
    body: str

    def placeholders(self) -> set[str]:
        """The {names} the template uses."""
        return placeholders_of(self.subject) | placeholders_of(self.body)

    def render(self, values: Mapping[str, str]) -> tuple[str, str]:
        """(subject, body) with the values in; TemplateError names a missing one."""
        missing = self.placeholders() - set(values)
        if missing:
            raise TemplateError(f"no value for {', '.join(sorted(missing))}")
        return self.subject.format_map(values), self.body.format_map(values)


@dataclass(frozen=True)
class Due:
    """A delivery to attempt."""

    id: int
    notification_id: str
    channel: str
    attempts: int
    email: str
    subject: str
    body: str


class NotifyStore:
    """Notifications in the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- subscriptions and contacts --------------------------------------------------------

    def subscribe(self, siren: str, topic: str, channels: Sequence[str], email: str) -> None:
        """Creates or replaces a company's subscription to a topic; the e-mail channel needs
        an address."""
        if "EMAIL" in channels and "@" not in email:
            raise ContactRefused(
                "EMAIL_REQUIRED", "the e-mail channel needs an address", "required"
            )
        values = {"channels": ",".join(channels), "email": email}
        with self.engine.begin() as connection:
            done = connection.execute(
                update(notify_subscriptions)
                .where(notify_subscriptions.c.siren == siren, notify_subscriptions.c.topic == topic)
                .values(**values)
            )
            if done.rowcount == 0:
                connection.execute(
                    insert(notify_subscriptions).values(siren=siren, topic=topic, **values)
                )

    def subscriptions(self, siren: str) -> list[tuple[str, list[str], str, bool]]:
        """(topic, channels, email, email flagged) of a company's subscriptions."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(
                    notify_subscriptions.c.topic,
                    notify_subscriptions.c.channels,
                    notify_subscriptions.c.email,
                    notify_contacts.c.flagged,
                )
                .outerjoin(notify_contacts, notify_contacts.c.email == notify_subscriptions.c.email)
                .where(notify_subscriptions.c.siren == siren)
                .order_by(notify_subscriptions.c.topic)
            ).all()
        return [(str(r[0]), str(r[1]).split(","), str(r[2]), bool(r[3])) for r in rows]

    def flag_contact(self, email: str, reason: str) -> None:
        """Marks an address as bounced or expired: it receives no more mail."""
        with self.engine.begin() as connection:
            done = connection.execute(
                update(notify_contacts)
                .where(notify_contacts.c.email == email)
                .values(flagged=1, reason=reason[:200], changed_at=now_ms())
            )
            if done.rowcount == 0:
                connection.execute(
                    insert(notify_contacts).values(
                        email=email, flagged=1, reason=reason[:200], changed_at=now_ms()
                    )
                )

    def change_contact(self, siren: str, email: str, new_email: str) -> tuple[int, int]:
        """Replaces a company's address in its subscriptions and its e-mails not yet sent;
        the same address again clears its flag. (subscriptions, pending e-mails) changed."""
        if "@" not in new_email:
            raise ContactRefused(
                "NOT_AN_EMAIL", "the new address is not an e-mail address", "not an e-mail address"
            )
        with self.engine.begin() as connection:
            subscriptions = connection.execute(
                update(notify_subscriptions)
                .where(notify_subscriptions.c.siren == siren, notify_subscriptions.c.email == email)
                .values(email=new_email)
            ).rowcount
            company = select(notifications.c.id).where(notifications.c.siren == siren)
            pending = connection.execute(
                update(notify_deliveries)
                .where(
                    notify_deliveries.c.email == email,
                    notify_deliveries.c.state.in_((DeliveryState.PENDING, DeliveryState.RETRYING)),
                    notify_deliveries.c.notification_id.in_(company),
                )
                .values(email=new_email)
            ).rowcount
            if new_email == email:
                connection.execute(
                    update(notify_contacts)
                    .where(notify_contacts.c.email == email)
                    .values(flagged=0, reason="confirmed by its company", changed_at=now_ms())
                )
        return subscriptions, pending

    def flagged(self, email: str) -> bool:
        """True when the address bounced or expired."""
        with reading(self.engine) as connection:
            value = connection.execute(
                select(notify_contacts.c.flagged).where(notify_contacts.c.email == email)
            ).scalar()
        return bool(value)

    # -- templates -------------------------------------------------------------------------

    def publish_template(self, name: str, topic: str, subject: str, body: str) -> TemplateRecord:
        """Stores the template's next version; TemplateError for one that cannot render."""
        for text in (subject, body):
            placeholders_of(text)  # raises TemplateError
        with self.engine.begin() as connection:
            latest = connection.execute(
                select(notify_templates.c.version)
                .where(notify_templates.c.name == name)
                .order_by(notify_templates.c.version.desc())
                .limit(1)
            ).scalar()
            version = int(latest or 0) + 1
            connection.execute(
                insert(notify_templates).values(
                    name=name,
                    version=version,
                    topic=topic,
                    subject=subject,
                    body=body,
                    created_at=now_ms(),
                )
            )
        return TemplateRecord(name, version, topic, subject, body)

    def template(self, name: str, version: int = 0) -> TemplateRecord | None:
        """A version of a template (0: the latest)."""
        query = select(
            notify_templates.c.name,
            notify_templates.c.version,
            notify_templates.c.topic,
            notify_templates.c.subject,
            notify_templates.c.body,
        ).where(notify_templates.c.name == name)
        query = (
            query.where(notify_templates.c.version == version)
            if version
            else query.order_by(notify_templates.c.version.desc()).limit(1)
        )
        with reading(self.engine) as connection:
            row = connection.execute(query).first()
        return (
            TemplateRecord(str(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]))
            if row
            else None
        )

    # -- sending ---------------------------------------------------------------------------

    def send(
        self,
        request_id: str,
        template: TemplateRecord,
        sirens: Iterable[str] | None,
        values: Mapping[str, str],
        *,
        official: bool,
        deadline_ms: int,
    ) -> tuple[int, bool]:
        """Renders one notification per company and queues its deliveries; (count, False) when
        the request id was used before (nothing sent again).

        Set-based: the recipients are resolved and their notifications and deliveries written
        by a few INSERT ... SELECT statements, whatever their number (one statement per row
        made a fan-out to 100,000 companies take most of a minute on PostgreSQL). The template
        is rendered once, with a marker where the SIREN goes that the database replaces.
        """
        moment = now_ms()
        dialect = self.engine.dialect.name
        with self.engine.begin() as connection:
            known = connection.execute(
                select(notify_sends.c.notifications).where(notify_sends.c.request_id == request_id)
            ).scalar()
            if known is not None:
                return int(known), False
            # The request's record first: a concurrent retry waits here, and on SQLite the
            # transaction writes before it reads (a read first could not take the write lock
            # once another connection wrote).
            connection.execute(
                insert(notify_sends).values(
                    request_id=request_id, notifications=0, created_at=moment
                )
            )  # a concurrent retry committed first: IntegrityError, and this one rolls back
            fanout = _temporary(_FANOUT, connection)
            if sirens is None:
                recipients = select(
                    _new_id(dialect),
                    notify_subscriptions.c.siren,
                    notify_subscriptions.c.channels,
                    notify_subscriptions.c.email,
                ).where(notify_subscriptions.c.topic == template.topic)
            else:
                targets = _temporary(_TARGETS, connection)
                _bulk_insert(connection, targets, [(siren,) for siren in sorted(set(sirens))])
                subscribed = notify_subscriptions.alias("subscribed")
                recipients = select(
                    _new_id(dialect),
                    targets.c.siren,
                    func.coalesce(subscribed.c.channels, DEFAULT_CHANNELS),
                    func.coalesce(subscribed.c.email, ""),
                ).select_from(
                    targets.outerjoin(
                        subscribed,
                        and_(
                            subscribed.c.siren == targets.c.siren,
                            subscribed.c.topic == template.topic,
                        ),
                    )
                )
            resolve = insert(fanout).from_select(["id", "siren", "channels", "email"], recipients)
            count = connection.execute(resolve.execution_options(preserve_rowcount=True)).rowcount
            if count:
                self._write_fanout(
                    connection, template, values, official=official, deadline_ms=deadline_ms,
                    moment=moment,
                )  # fmt: skip
            connection.execute(
                update(notify_sends)
                .where(notify_sends.c.request_id == request_id)
                .values(notifications=count)
            )
            if dialect != "postgresql":  # PostgreSQL drops them at commit
                for table in (_FANOUT, _TARGETS):
                    table.drop(connection, checkfirst=True)
        return count, True

    def _write_fanout(
        self,
        connection: Connection,
        template: TemplateRecord,
        values: Mapping[str, str],
        *,
        official: bool,
        deadline_ms: int,
        moment: int,
    ) -> None:
        """The notifications and deliveries of the recipients in the fan-out table, in SIREN
        order; TemplateError (nothing written) when a value is missing."""
        fanout = _FANOUT
        marker = f"\ue000{uuid.uuid4().hex}\ue000"  # no template nor value can hold it
        subject, body = template.render({**values, "siren": marker})

        def rendered(text: str) -> ColumnElement[str]:
            if marker not in text:
                return literal(text, String)
            return func.replace(literal(text, String), literal(marker, String), fanout.c.siren)

        notification: dict[str, ColumnElement[Any]] = {
            "id": fanout.c.id,
            "siren": fanout.c.siren,
            "topic": literal(template.topic, String),
            "template": literal(template.name, String),
            "template_version": literal(template.version, Integer),
            "subject": rendered(subject),
            "body": rendered(body),
            "official": literal(int(official), Integer),
            "deadline": literal(deadline_ms, BigInteger),
            "created_at": literal(moment, BigInteger),
            "state": literal(0, Integer),
            "fetched": literal(NOT_HELD, Integer),
        }
        rows = select(*notification.values()).order_by(fanout.c.siren)
        connection.execute(insert(notifications).from_select(list(notification), rows))
        # One delivery per channel of each recipient's comma-separated list, in its order.
        channels = union_all(
            *(select(literal(name, String).label("name")) for name in CHANNELS)
        ).subquery("channel_names")
        listed = literal(",", String) + fanout.c.channels + literal(",", String)
        wanted = literal(",", String) + channels.c.name + literal(",", String)
        place = (
            func.strpos(listed, wanted)
            if connection.dialect.name == "postgresql"
            else func.instr(listed, wanted)
        )
        delivery: dict[str, ColumnElement[Any]] = {
            "notification_id": fanout.c.id,
            "channel": channels.c.name,
            "state": literal(DeliveryState.PENDING.value, String),
            "attempts": literal(0, Integer),
            "next_attempt_at": literal(moment, BigInteger),
            "last_error": literal("", String),
            "email": fanout.c.email,
        }
        rows = (
            select(*delivery.values())
            .select_from(fanout.join(channels, place > 0))
            .order_by(fanout.c.siren, place)
        )
        connection.execute(insert(notify_deliveries).from_select(list(delivery), rows))

    def _insert_many(
        self,
        connection: object,
        table: str,
        rows: Sequence[tuple[object, ...]],
        names: tuple[str, ...],
    ) -> None:
        """Many rows straight to the driver (a fan-out to 100,000 companies writes twice
        that)."""
        marker = "%s" if self.engine.dialect.name == "postgresql" else "?"
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 -- constant names only
            table, ", ".join(names), ", ".join([marker] * len(names))
        )
        for start in range(0, len(rows), _BATCH):
            connection.exec_driver_sql(sql, list(rows[start : start + _BATCH]))  # type: ignore[attr-defined]

    # -- the outbox ------------------------------------------------------------------------

    def _due(self, limit: int, channels: Sequence[str]) -> Select[tuple[int]]:
        """The ids of up to `limit` deliveries of those channels due now, oldest first, locked;
        those another dispatcher holds locked are skipped."""
        return (
            select(notify_deliveries.c.id)
            .where(
                notify_deliveries.c.state.in_(_WAITING),
                notify_deliveries.c.next_attempt_at <= now_ms(),
                notify_deliveries.c.channel.in_(channels),
            )
            .order_by(notify_deliveries.c.next_attempt_at, notify_deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    def due(self, limit: int, channels: Sequence[str], lease_ms: int = 60_000) -> list[Due]:
        """Claims up to `limit` deliveries of those channels due now (for `lease_ms`): two
        dispatchers on one database never attempt the same delivery at once."""
        moment, token = now_ms(), uuid.uuid4().hex
        with self.engine.begin() as connection:
            # Read first: an idle poll writes nothing (on SQLite, takes no write lock).
            ids = list(connection.execute(self._due(limit, channels)).scalars())
            if not ids:
                return []
            connection.execute(
                update(notify_deliveries)
                .where(  # still due: on SQLite the read above took no lock
                    notify_deliveries.c.id.in_(ids),
                    notify_deliveries.c.state.in_(_WAITING),
                    notify_deliveries.c.next_attempt_at <= moment,
                )
                .values(state=DeliveryState.SENDING, claim=token, next_attempt_at=moment + lease_ms)
            )
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(
                    notify_deliveries.c.id,
                    notify_deliveries.c.notification_id,
                    notify_deliveries.c.channel,
                    notify_deliveries.c.attempts,
                    notify_deliveries.c.email,
                    notifications.c.subject,
                    notifications.c.body,
                )
                .join(notifications, notifications.c.id == notify_deliveries.c.notification_id)
                .where(notify_deliveries.c.claim == token)
                .order_by(notify_deliveries.c.id)
            ).all()
        return [
            Due(int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]), str(r[6]))
            for r in rows
        ]

    def held_due(self, channels: Sequence[str] = HELD_CHANNELS) -> bool:
        """True when some delivery of those channels is due now (a cheap look before a round)."""
        with reading(self.engine) as connection:
            found = connection.execute(
                select(notify_deliveries.c.id)
                .where(
                    notify_deliveries.c.state.in_(_WAITING),
                    notify_deliveries.c.next_attempt_at <= now_ms(),
                    notify_deliveries.c.channel.in_(channels),
                )
                .limit(1)
            ).first()
        return found is not None

    def deliver_held(
        self,
        limit: int,
        channels: Sequence[str] = HELD_CHANNELS,
        actor: str = "channel",
        trace_id: str = "",
    ) -> int:
        """Delivers up to `limit` deliveries due on channels that hold notifications in the
        node (nothing leaves it: delivering is recording it); returns how many.

        One transaction of set-based statements, nothing read out: the deliveries delivered
        (in one update, no SENDING step: there is no attempt that could fail), their
        acknowledgements, their notifications delivered and held for fetching when they came
        on the API channel. Two dispatchers never deliver the same one (SKIP LOCKED).
        """
        moment, token = now_ms(), uuid.uuid4().hex
        claimed = notify_deliveries.c.claim == token
        with self.engine.begin() as connection:
            done = connection.execute(
                update(notify_deliveries)
                .where(notify_deliveries.c.id.in_(self._due(limit, channels).scalar_subquery()))
                .values(
                    state=DeliveryState.DELIVERED,
                    attempts=notify_deliveries.c.attempts + 1,
                    claim=token,
                )
            ).rowcount
            if not done:
                return 0
            acks: dict[str, ColumnElement[Any]] = {
                "notification_id": notify_deliveries.c.notification_id,
                "kind": literal(int(AckKind.DELIVERED), Integer),
                "channel": notify_deliveries.c.channel,
                "at": literal(moment, BigInteger),
                "actor": literal(actor, String),
                "trace_id": literal(trace_id, String),
            }
            connection.execute(
                insert(notify_acks).from_select(list(acks), select(*acks.values()).where(claimed))
            )
            of_claim = select(notify_deliveries.c.notification_id).where(claimed)
            on_api = of_claim.where(notify_deliveries.c.channel == "API")
            # One statement, each notification row written once: delivered, and held for
            # fetching when it came on the API channel.
            connection.execute(
                update(notifications)
                .where(
                    notifications.c.id.in_(of_claim.scalar_subquery()),
                    or_(
                        notifications.c.state < AckKind.DELIVERED,
                        notifications.c.fetched == NOT_HELD,
                    ),
                )
                .values(
                    state=case(
                        (notifications.c.state < AckKind.DELIVERED, int(AckKind.DELIVERED)),
                        else_=notifications.c.state,
                    ),
                    fetched=case(
                        (
                            and_(
                                notifications.c.fetched == NOT_HELD,
                                notifications.c.id.in_(on_api.scalar_subquery()),
                            ),
                            FETCHABLE,
                        ),
                        else_=notifications.c.fetched,
                    ),
                )
            )
        return done

    def delivered(self, items: Sequence[Due], actor: str = "channel", trace_id: str = "") -> None:
        """Marks deliveries delivered, with their acknowledgement, in one transaction."""
        if not items:
            return
        moment = now_ms()
        with self.engine.begin() as connection:
            connection.execute(
                update(notify_deliveries)
                .where(notify_deliveries.c.id.in_([d.id for d in items]))
                .values(state=DeliveryState.DELIVERED, attempts=notify_deliveries.c.attempts + 1)
            )
            self._insert_many(
                connection,
                "notify_acks",
                [
                    (d.notification_id, AckKind.DELIVERED, d.channel, moment, actor, trace_id)
                    for d in items
                ],
                ("notification_id", "kind", "channel", "at", "actor", "trace_id"),
            )
            connection.execute(
                update(notifications)
                .where(
                    notifications.c.id.in_({d.notification_id for d in items}),
                    notifications.c.state < AckKind.DELIVERED,
                )
                .values(state=AckKind.DELIVERED)
            )
            held = {d.notification_id for d in items if d.channel == "API"}
            if held:  # now the API channel may hand them over
                connection.execute(
                    update(notifications)
                    .where(notifications.c.id.in_(held), notifications.c.fetched == NOT_HELD)
                    .values(fetched=FETCHABLE)
                )

    def failed(self, item: Due, error: str, *, retry_in_ms: int | None) -> None:
        """Records a failed attempt: to retry after `retry_in_ms`, or dead (None)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(notify_deliveries)
                .where(notify_deliveries.c.id == item.id)
                .values(
                    state=DeliveryState.RETRYING if retry_in_ms is not None else DeliveryState.DEAD,
                    attempts=notify_deliveries.c.attempts + 1,
                    last_error=error[:300],
                    next_attempt_at=now_ms() + (retry_in_ms or 0),
                )
            )

    # -- acknowledgements ------------------------------------------------------------------

    def acknowledge(
        self, notification_id: str, kind: AckKind, channel: str, actor: str, trace_id: str
    ) -> None:
        """Records an acknowledgement (all are kept, in any order); the state is the
        strongest."""
        with self.engine.begin() as connection:
            connection.execute(
                insert(notify_acks).values(
                    notification_id=notification_id,
                    kind=kind,
                    channel=channel,
                    at=now_ms(),
                    actor=actor[:128],
                    trace_id=trace_id,
                )
            )
            connection.execute(
                update(notifications)
                .where(notifications.c.id == notification_id, notifications.c.state < kind)
                .values(state=kind)
            )

    def acknowledge_many(
        self, ids: Sequence[str], kind: AckKind, channel: str, actor: str, trace_id: str
    ) -> None:
        """Records the same acknowledgement of many notifications at once."""
        if not ids:
            return
        moment = now_ms()
        with self.engine.begin() as connection:
            self._insert_many(
                connection,
                "notify_acks",
                [(i, kind, channel, moment, actor[:128], trace_id) for i in ids],
                ("notification_id", "kind", "channel", "at", "actor", "trace_id"),
            )
            connection.execute(
                update(notifications)
                .where(notifications.c.id.in_(ids), notifications.c.state < kind)
                .values(state=kind)
            )

    def notifications_by_id(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Those notifications, oldest first."""
        return self._notifications(notifications.c.id.in_(ids), len(ids)) if ids else []

    def lease_held(self, sirens: Sequence[str] | None, limit: int, lease_ms: int) -> list[str]:
        """Ids of notifications (of those companies; None: every company) held on the API
        channel and not leased now, leased for `lease_ms`: handed over until acknowledged."""
        moment = now_ms()
        free = (notifications.c.fetched == FETCHABLE) & (notifications.c.lease_until <= moment)
        with self.engine.begin() as connection:
            query = (
                select(notifications.c.id)
                .where(free)
                .order_by(notifications.c.fetched, notifications.c.created_at, notifications.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if sirens is not None:
                query = query.where(notifications.c.siren.in_(sirens))
            ids = [str(r[0]) for r in connection.execute(query)]
            if ids:
                # The conditions again: on SQLite the select takes no lock (nor even a snapshot
                # the update shares), so an acknowledgement may come in between; only what is
                # still held and free is leased, and handed over.
                leased = {
                    str(r[0])
                    for r in connection.execute(
                        update(notifications)
                        .where(notifications.c.id.in_(ids), free)
                        .values(
                            lease_until=moment + lease_ms, handovers=notifications.c.handovers + 1
                        )
                        .returning(notifications.c.id)
                    )
                }
                ids = [i for i in ids if i in leased]
        return ids

    def release(self, ids: Sequence[str]) -> None:
        """Ends the lease of notifications leased but not handed over after all."""
        if not ids:
            return
        with self.engine.begin() as connection:
            connection.execute(
                update(notifications)
                .where(notifications.c.id.in_(ids), notifications.c.fetched == FETCHABLE)
                .values(lease_until=0)
            )

    def acknowledge_held(
        self, ids: Sequence[str], sirens: Sequence[str] | None, actor: str, trace_id: str
    ) -> int:
        """The company's acknowledgement of notifications handed over on the API channel (of
        those companies; None: every company): they are received and handed over no more.
        Returns how many this call acknowledged; others change nothing."""
        with self.engine.begin() as connection:
            query = (
                select(notifications.c.id)
                .where(
                    notifications.c.id.in_(ids),
                    notifications.c.fetched == FETCHABLE,
                    notifications.c.handovers > 0,
                )
                .with_for_update()
            )
            if sirens is not None:
                query = query.where(notifications.c.siren.in_(sirens))
            found = [str(r[0]) for r in connection.execute(query)]
            if not found:
                return 0
            connection.execute(
                update(notifications)
                .where(notifications.c.id.in_(found), notifications.c.fetched == FETCHABLE)
                .values(fetched=FETCHED, lease_until=0)
            )
            moment = now_ms()
            self._insert_many(
                connection,
                "notify_acks",
                [(i, AckKind.RECEIVED, "API", moment, actor[:128], trace_id) for i in found],
                ("notification_id", "kind", "channel", "at", "actor", "trace_id"),
            )
            connection.execute(
                update(notifications)
                .where(notifications.c.id.in_(found), notifications.c.state < AckKind.RECEIVED)
                .values(state=AckKind.RECEIVED)
            )
        return len(found)

    # -- links -----------------------------------------------------------------------------

    def add_link(self, notification_id: str, reference: str) -> None:
        """Stores an e-mail link's reference (only its hash)."""
        with self.engine.begin() as connection:
            connection.execute(
                insert(notify_links).values(
                    reference_hash=hashlib.sha256(reference.encode()).digest(),
                    notification_id=notification_id,
                    used_at=0,
                )
            )

    def use_link(self, reference: str) -> str | None:
        """The notification of an unused link, which is then used; None otherwise."""
        digest = hashlib.sha256(reference.encode()).digest()
        with self.engine.begin() as connection:
            done = connection.execute(
                update(notify_links)
                .where(notify_links.c.reference_hash == digest, notify_links.c.used_at == 0)
                .values(used_at=now_ms())
            )
            if done.rowcount != 1:
                return None
            return str(
                connection.execute(
                    select(notify_links.c.notification_id).where(
                        notify_links.c.reference_hash == digest
                    )
                ).scalar()
            )

    # -- reading ---------------------------------------------------------------------------

    def notification(self, notification_id: str) -> dict[str, Any] | None:
        """One notification with its acknowledgements and deliveries."""
        found = self._notifications(notifications.c.id == notification_id, 1)
        return found[0] if found else None

    def list_for(
        self, siren: str, limit: int, before: tuple[int, str] | None
    ) -> list[dict[str, Any]]:
        """A company's notifications, newest first."""
        condition = notifications.c.siren == siren
        if before is not None:
            condition = and_(
                condition,
                or_(
                    notifications.c.created_at < before[0],
                    and_(notifications.c.created_at == before[0], notifications.c.id < before[1]),
                ),
            )
        return self._notifications(condition, limit, newest_first=True)

    def overdue(self, limit: int, after: str = "") -> list[dict[str, Any]]:
        """Official notifications not acknowledged (authenticated) past their deadline."""
        condition = and_(
            notifications.c.official == 1,
            notifications.c.state < AckKind.AUTHENTICATED,
            notifications.c.deadline > 0,
            notifications.c.deadline < now_ms(),
            notifications.c.id > after,
        )
        return self._notifications(condition, limit, by_id=True)

    def _notifications(
        self,
        condition: ColumnElement[bool],
        limit: int,
        *,
        newest_first: bool = False,
        by_id: bool = False,
    ) -> list[dict[str, Any]]:
        order = (
            [notifications.c.id]
            if by_id
            else [notifications.c.created_at.desc(), notifications.c.id.desc()]
            if newest_first
            else [notifications.c.created_at, notifications.c.id]
        )
        with reading(self.engine) as connection:
            rows = [
                dict(r._mapping)
                for r in connection.execute(
                    select(notifications).where(condition).order_by(*order).limit(limit)
                )
            ]
            ids = [r["id"] for r in rows]
            acks = connection.execute(
                select(notify_acks)
                .where(notify_acks.c.notification_id.in_(ids))
                .order_by(notify_acks.c.id)
            ).all()
            deliveries = connection.execute(
                select(notify_deliveries)
                .where(notify_deliveries.c.notification_id.in_(ids))
                .order_by(notify_deliveries.c.id)
            ).all()
        by_notification: dict[str, dict[str, Any]] = {str(r["id"]): r for r in rows}
        for row in rows:
            row["acks"], row["deliveries"] = [], []
        for ack in acks:
            by_notification[ack.notification_id]["acks"].append(dict(ack._mapping))
        for delivery in deliveries:
            by_notification[delivery.notification_id]["deliveries"].append(dict(delivery._mapping))
        return rows
