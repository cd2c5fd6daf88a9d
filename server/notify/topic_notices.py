"""Notices the backbone itself sends on a topic (a nomenclature published, a CRM posted): each
kind has a built-in template, published on first need, and goes through the notification outbox
like any other sending (idempotent per request id, delivered by the dispatcher)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from registry.notify.store import NotifyStore
from server.notify.dispatch import NotifyDispatcher


@dataclass(frozen=True)
class NoticeTemplate:
    """A built-in template: its name, topic and wording with {placeholders}."""

    name: str
    topic: str
    subject: str
    body: str


class TopicNotices:
    """Sends built-in notices through the outbox and wakes the dispatcher."""

    def __init__(self, store: NotifyStore, dispatcher: NotifyDispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher

    async def send(
        self,
        notice: NoticeTemplate,
        request_id: str,
        values: Mapping[str, str],
        sirens: Iterable[str] | None = None,
    ) -> int:
        """Sends to the given companies' subscriptions (every subscriber when None); returns
        how many notifications the request made (the first time it was sent)."""
        template = await asyncio.to_thread(self.store.template, notice.name)
        if template is None:
            try:
                template = await asyncio.to_thread(
                    self.store.publish_template, notice.name, notice.topic, notice.subject,
                    notice.body,
                )  # fmt: skip
            except IntegrityError:  # another call published it first
                template = await asyncio.to_thread(self.store.template, notice.name)
                assert template is not None
        count, _ = await asyncio.to_thread(
            functools.partial(
                self.store.send, request_id, template, sirens, values,
                official=False, deadline_ms=0,
            )
        )  # fmt: skip
        self.dispatcher.wake()
        return count
