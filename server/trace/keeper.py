"""The node's own spans, kept: a span processor that queues the spans worth keeping, off the
call path, and a background loop that writes them in batches and purges what is past retention.

Worth keeping: the spans of a trace the node serves or carries on (a server span, a span of the
node's own interops.* tracers such as the DSN pipeline's, a span that continues a trace from
another process) and their children; not the root spans of background polling (a lone SELECT),
nor calls of health, reflection or the collector itself, nor the connection check-outs of the
database instrumentation. The queue is bounded: when it is full
a span is dropped and counted, a call never waits. The keeper's own writes run with
instrumentation suppressed, so they make no spans to keep.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time

from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

from registry.trace.store import NODE, StoredSpan, TraceStore
from server.background_loop import BackgroundLoop
from server.trace.attributes import of_sdk

log = logging.getLogger("interops.trace")

# Server spans of calls that are no exchange: probes, tools, and spans arriving.
IGNORED_CALLS = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/opentelemetry.proto.collector.trace.v1.TraceService/",
)
BATCH = 500
# Spans started and not yet ended that the processor remembers; past this (spans never ended),
# it forgets them rather than grow.
MAX_LIVE = 100_000


def _ignored(name: str) -> bool:
    return name.startswith(IGNORED_CALLS)


class SpanKeeper(SpanProcessor):
    """Queues the node's spans worth keeping (see the module); never blocks."""

    def __init__(self, service: str, capacity: int = 20_000) -> None:
        self.service = service
        self.queue: queue.Queue[StoredSpan] = queue.Queue(maxsize=capacity)
        self.dropped = 0
        self._live: dict[int, bool] = {}

    def _worth_keeping(self, span: Span) -> bool:
        scope = span.instrumentation_scope
        if span.name == "connect" and scope is not None and "sqlalchemy" in scope.name:
            return False  # a pool's connection check-out: nothing for an operator
        parent = span.parent
        if parent is None or not parent.is_valid:
            ours = scope is not None and scope.name.startswith("interops.")
            return (span.kind == SpanKind.SERVER or ours) and not _ignored(span.name)
        if parent.is_remote:  # continues an exchange from another process (or a deposit's)
            return not _ignored(span.name)
        return self._live.get(parent.span_id, False)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Decides at its start whether the span is kept (its parent is still live)."""
        if len(self._live) >= MAX_LIVE:
            self._live.clear()
        self._live[span.context.span_id] = self._worth_keeping(span)

    def on_end(self, span: ReadableSpan) -> None:
        """Queues a kept span; drops it (counted) when the queue is full."""
        context = span.context
        if context is None or not self._live.pop(context.span_id, False):
            return
        stored = of_sdk(span, self.service, NODE)
        if stored is None:
            return
        try:
            self.queue.put_nowait(stored)
        except queue.Full:
            self.dropped += 1

    def take(self, limit: int = BATCH) -> list[StoredSpan]:
        """Up to `limit` queued spans."""
        taken: list[StoredSpan] = []
        while len(taken) < limit:
            try:
                taken.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return taken

    def shutdown(self) -> None:
        """Nothing to release: the loop writes what is queued when it stops."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Spans are written by the loop (TraceKeeper.flush)."""
        return True


def write_unseen(store: TraceStore, spans: list[StoredSpan]) -> None:
    """Stores spans with instrumentation suppressed: the write makes no span of its own."""
    with suppress_instrumentation():
        store.add(spans)


class TraceKeeper(BackgroundLoop):
    """Writes the queued spans every round, and purges spans past retention every
    `purge_seconds`."""

    name = "trace-keeper"

    def __init__(
        self,
        store: TraceStore,
        keeper: SpanKeeper,
        retention_hours: float,
        poll_seconds: float = 1.0,
        purge_seconds: float = 300.0,
    ) -> None:
        super().__init__(poll_seconds)
        self.store = store
        self.keeper = keeper
        self.retention_ns = int(retention_hours * 3600 * 1e9)
        self.purge_seconds = purge_seconds
        self._last_purge = 0.0
        self._lock = asyncio.Lock()

    async def flush(self) -> None:
        """Writes every span queued so far."""
        async with self._lock:
            while batch := self.keeper.take():
                await asyncio.to_thread(write_unseen, self.store, batch)

    async def purge(self, now_ns: int | None = None) -> int:
        """Forgets the spans that ended more than the retention period before now."""
        now = time.time_ns() if now_ns is None else now_ns

        def forget() -> int:
            with suppress_instrumentation():
                return self.store.purge(now - self.retention_ns)

        return await asyncio.to_thread(forget)

    async def round(self) -> None:
        """Writes what is queued; purges when it is time."""
        try:
            await self.flush()
            if time.monotonic() - self._last_purge >= self.purge_seconds:
                self._last_purge = time.monotonic()
                purged = await self.purge()
                if purged:
                    log.info("%d spans past retention purged", purged)
        except Exception:  # the next round retries; spans meanwhile wait in the queue
            log.exception("keeping spans failed")

    async def stop(self) -> None:
        """Stops the loop, then writes what is left."""
        await super().stop()
        try:
            await self.flush()
        except Exception:
            log.exception("writing the last spans failed")
