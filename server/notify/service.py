"""interops.notify.v1.NotificationService: subscriptions, templates, sending, acknowledgements.

A company's notifications are for callers whose chain grants notify.read over the whole company
(its SIREN, or everything); sending and templates need notify.send. Reading a notification
through the portal (a PORTAL or NAVIGATION chain) is its authenticated acknowledgement;
acknowledging it on the API channel (AcknowledgeNotifications, after a fetch or a stream
handed it over under a lease), or opening its e-mail link, the received one. The API channel
hands each notification over at least once: until acknowledged, it comes back when its lease
ends.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

from interops.notify.v1 import notify_pb2 as pb
from interops.notify.v1 import notify_pb2_grpc

from registry.kernel.change_feed import NOTIFICATION, ChangeFeed
from registry.kernel.clock import now_ms, timestamp
from registry.kernel.rights import NOTIFY_READ
from registry.notify.store import (
    AckKind,
    ContactRefused,
    DeliveryState,
    NotifyStore,
    TemplateError,
)
from server.notify.dispatch import NotifyDispatcher
from server.rpc import page_tokens
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from server.rpc.handler_wrapping import Context
from server.rpc.telemetry import current_trace_id
from token_suite import profiles

DEFAULT_PAGE = 20
_DAY_MS = 86_400_000
# How long a caller of the API channel has to acknowledge what it was handed, unless it says.
DEFAULT_LEASE_SECONDS = 60


def notification_message(row: dict[str, Any]) -> pb.Notification:
    """A stored notification as its message."""
    acks = [
        pb.Acknowledgement(
            kind=pb.AckKind.ValueType(int(str(a["kind"]))),
            channel=pb.Channel.Value(f"CHANNEL_{a['channel']}")
            if a["channel"]
            else pb.CHANNEL_UNSPECIFIED,
            at=timestamp(int(str(a["at"]))),
            actor=str(a["actor"]),
            trace_id=str(a["trace_id"]),
        )
        for a in row["acks"]
    ]
    deliveries = [
        pb.ChannelDelivery(
            channel=pb.Channel.Value(f"CHANNEL_{d['channel']}"),
            state=DeliveryState(d["state"]).to_proto(),
            attempts=int(str(d["attempts"])),
            last_error=str(d["last_error"]),
        )
        for d in row["deliveries"]
    ]
    return pb.Notification(
        id=str(row["id"]),
        siren=str(row["siren"]),
        topic=pb.Topic.Value(f"TOPIC_{row['topic']}"),
        template=str(row["template"]),
        template_version=int(str(row["template_version"])),
        subject=str(row["subject"]),
        body=str(row["body"]),
        official=bool(row["official"]),
        deadline=timestamp(int(str(row["deadline"]))),
        created_at=timestamp(int(str(row["created_at"]))),
        state=pb.AckKind.ValueType(int(str(row["state"]))),
        acknowledgements=acks,
        deliveries=deliveries,
        handovers=int(str(row.get("handovers", 0))),
    )


def _companies(right: str) -> frozenset[str] | None:
    """The SIRENs the caller covers for `right` (None: every company)."""
    scope = current_principal().grants.get(right)
    if scope is None:
        return frozenset()
    return None if scope.everything else scope.sirens


def _require_company(siren: str, right: str = NOTIFY_READ) -> None:
    covered = _companies(right)
    if covered is not None and siren not in covered:
        raise PermissionDenied("NOT_YOUR_COMPANY", f"the token does not grant {right} over {siren}")


def _bad_contact(refused: ContactRefused, field: str) -> InvalidArgument:
    return InvalidArgument(
        refused.reason, refused.message, violations=[FieldViolation(field, refused.detail)]
    )


class NotificationService(notify_pb2_grpc.NotificationServiceServicer):
    """Serves notifications from the store; the dispatcher delivers them."""

    def __init__(
        self,
        store: NotifyStore,
        dispatcher: NotifyDispatcher,
        poll_seconds: float,
        *,
        changes: ChangeFeed,
    ):
        self.store = store
        self.dispatcher = dispatcher
        self.poll_seconds = poll_seconds
        self.changes = changes

    async def Subscribe(
        self, request: pb.SubscribeRequest, context: Context
    ) -> pb.SubscribeResponse:
        wanted = request.subscription
        _require_company(wanted.siren)
        channels = [pb.Channel.Name(c).removeprefix("CHANNEL_") for c in wanted.channels]
        topic = pb.Topic.Name(wanted.topic).removeprefix("TOPIC_")
        try:
            await asyncio.to_thread(
                self.store.subscribe, wanted.siren, topic, channels, wanted.email
            )
        except ContactRefused as refused:
            raise _bad_contact(refused, "subscription.email") from None
        return pb.SubscribeResponse(subscription=wanted)

    async def ChangeContact(
        self, request: pb.ChangeContactRequest, context: Context
    ) -> pb.ChangeContactResponse:
        _require_company(request.siren)
        try:
            subscriptions, pending = await asyncio.to_thread(
                self.store.change_contact, request.siren, request.email, request.new_email
            )
        except ContactRefused as refused:
            raise _bad_contact(refused, "new_email") from None
        if not subscriptions:
            raise NotFound("CONTACT_NOT_FOUND", f"no subscription of {request.siren} uses it")
        self.dispatcher.wake()
        return pb.ChangeContactResponse(subscriptions=subscriptions, pending_emails=pending)

    async def ListSubscriptions(
        self, request: pb.ListSubscriptionsRequest, context: Context
    ) -> pb.ListSubscriptionsResponse:
        _require_company(request.siren)
        found = await asyncio.to_thread(self.store.subscriptions, request.siren)
        return pb.ListSubscriptionsResponse(
            subscriptions=[
                pb.Subscription(
                    siren=request.siren,
                    topic=pb.Topic.Value(f"TOPIC_{topic}"),
                    channels=[pb.Channel.Value(f"CHANNEL_{c}") for c in channels],
                    email=email,
                    email_flagged=flagged,
                )
                for topic, channels, email, flagged in found
            ]
        )

    async def PublishTemplate(
        self, request: pb.PublishTemplateRequest, context: Context
    ) -> pb.PublishTemplateResponse:
        wanted = request.template
        if wanted.topic == pb.TOPIC_UNSPECIFIED:
            raise InvalidArgument(
                "TOPIC_REQUIRED",
                "a template has a topic",
                violations=[FieldViolation("template.topic", "required")],
            )
        topic = pb.Topic.Name(wanted.topic).removeprefix("TOPIC_")
        try:
            stored = await asyncio.to_thread(
                self.store.publish_template, wanted.name, topic, wanted.subject, wanted.body
            )
            stored.render({name: "" for name in stored.placeholders()})
        except (ValueError, IndexError) as error:
            raise InvalidArgument(
                "BAD_TEMPLATE",
                f"the template cannot be rendered: {error}",
                violations=[FieldViolation("template.body", str(error))],
            ) from None
        return pb.PublishTemplateResponse(
            template=pb.Template(
                name=stored.name,
                version=stored.version,
                topic=wanted.topic,
                subject=stored.subject,
                body=stored.body,
            )
        )

    async def Send(self, request: pb.SendRequest, context: Context) -> pb.SendResponse:
        template = await asyncio.to_thread(
            self.store.template, request.template, request.template_version
        )
        if template is None:
            raise NotFound("TEMPLATE_NOT_FOUND", f"no template {request.template!r}")
        deadline = now_ms() + request.deadline_days * _DAY_MS if request.deadline_days else 0
        try:
            count, new = await asyncio.to_thread(
                functools.partial(
                    self.store.send,
                    request.request_id,
                    template,
                    list(request.sirens) or None,
                    dict(request.values),
                    official=request.official,
                    deadline_ms=deadline,
                )
            )
        except TemplateError as error:
            raise InvalidArgument(
                "MISSING_VALUE", str(error), violations=[FieldViolation("values", str(error))]
            ) from None
        if new:
            self.dispatcher.wake()
        return pb.SendResponse(notifications=count, repeated_request=not new)

    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: Context
    ) -> pb.ListNotificationsResponse:
        _require_company(request.siren)
        query = ("notifications", request.siren)
        after = page_tokens.decode(request.page_token, query, 2)
        size = request.page_size or DEFAULT_PAGE
        before = (int(after[0]), after[1]) if after else None
        rows = await asyncio.to_thread(self.store.list_for, request.siren, size + 1, before)
        page, token = page_tokens.cut(
            rows, size, query, lambda r: [str(r["created_at"]), str(r["id"])]
        )
        return pb.ListNotificationsResponse(
            notifications=[notification_message(r) for r in page], next_page_token=token
        )

    async def _own(self, notification_id: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self.store.notification, notification_id)
        covered = _companies(NOTIFY_READ)
        if row is None or (covered is not None and row["siren"] not in covered):
            raise NotFound("NOTIFICATION_NOT_FOUND", f"no notification {notification_id} of yours")
        return row

    async def ReadNotification(
        self, request: pb.ReadNotificationRequest, context: Context
    ) -> pb.ReadNotificationResponse:
        await self._own(request.id)
        principal = current_principal()
        if principal.profile in (profiles.PORTAL, profiles.NAVIGATION):
            await asyncio.to_thread(
                self.store.acknowledge,
                request.id,
                AckKind.AUTHENTICATED,
                "DASHBOARD",
                principal.subject,
                current_trace_id(),
            )
        row = await self._own(request.id)
        return pb.ReadNotificationResponse(notification=notification_message(row))

    async def _lease(self, limit: int, lease_seconds: int) -> list[pb.Notification]:
        """Leases up to `limit` held notifications of the caller's companies."""
        covered = _companies(NOTIFY_READ)
        if covered == frozenset():
            return []
        ids = await asyncio.to_thread(
            self.store.lease_held,
            sorted(covered) if covered is not None else None,
            limit,
            (lease_seconds or DEFAULT_LEASE_SECONDS) * 1000,
        )
        rows = await asyncio.to_thread(self.store.notifications_by_id, ids)
        return [notification_message(row) for row in rows]

    async def FetchNotifications(
        self, request: pb.FetchNotificationsRequest, context: Context
    ) -> pb.FetchNotificationsResponse:
        leased = await self._lease(request.max_notifications or 20, request.lease_seconds)
        return pb.FetchNotificationsResponse(notifications=leased)

    async def StreamNotifications(
        self, request: pb.StreamNotificationsRequest, context: Context
    ) -> AsyncIterator[pb.StreamNotificationsResponse]:
        # Woken when notifications of the caller's companies can be handed over (held, or
        # released by another caller); their leases running out are seen at the next poll.
        with self.changes.watch(NOTIFICATION, _companies(NOTIFY_READ)) as changed:
            while True:
                found = await self._lease(20, request.lease_seconds)
                unsent = [n.id for n in found]
                try:
                    for notification in found:
                        yield pb.StreamNotificationsResponse(notification=notification)
                        unsent.remove(notification.id)
                finally:
                    # The caller gone: what it was never sent is not its to acknowledge. (What
                    # it was sent comes back when its lease ends, unless acknowledged.)
                    if unsent:
                        await asyncio.shield(asyncio.to_thread(self.store.release, unsent))
                if not found:
                    await changed.wait(self.poll_seconds)

    async def AcknowledgeNotifications(
        self, request: pb.AcknowledgeNotificationsRequest, context: Context
    ) -> pb.AcknowledgeNotificationsResponse:
        covered = _companies(NOTIFY_READ)
        if covered == frozenset():
            return pb.AcknowledgeNotificationsResponse()
        acknowledged = await asyncio.to_thread(
            self.store.acknowledge_held,
            sorted(set(request.ids)),
            sorted(covered) if covered is not None else None,
            current_principal().subject,
            current_trace_id(),
        )
        return pb.AcknowledgeNotificationsResponse(acknowledged=acknowledged)

    async def OpenLink(self, request: pb.OpenLinkRequest, context: Context) -> pb.OpenLinkResponse:
        notification_id = await asyncio.to_thread(self.store.use_link, request.reference)
        if notification_id is None:
            raise NotFound("LINK_NOT_FOUND", "this link is unknown or was used already")
        await asyncio.to_thread(
            self.store.acknowledge,
            notification_id,
            AckKind.RECEIVED,
            "EMAIL",
            "link",
            current_trace_id(),
        )
        row = await asyncio.to_thread(self.store.notification, notification_id)
        return pb.OpenLinkResponse(
            notification_id=notification_id, siren=str(row["siren"]) if row else ""
        )

    async def ListOverdue(
        self, request: pb.ListOverdueRequest, context: Context
    ) -> pb.ListOverdueResponse:
        query = ("overdue",)
        after = page_tokens.decode(request.page_token, query, 1)
        size = request.page_size or DEFAULT_PAGE
        rows = await asyncio.to_thread(self.store.overdue, size + 1, after[0] if after else "")
        page, token = page_tokens.cut(rows, size, query, lambda r: [str(r["id"])])
        return pb.ListOverdueResponse(
            notifications=[notification_message(r) for r in page], next_page_token=token
        )
