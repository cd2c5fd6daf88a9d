"""A read-through cache of establishments in the node, kept fresh by following the change feed.

GetEstablishment is the registry's hot call. The cache holds the most recently read
establishments; a background task reads the change feed and drops every SIRET that changed, so a
cached answer is stale only until the change is notified (registry/kernel/change_feed.py), at
most one poll interval (INTEROPS_FEED_POLL_SECONDS) if a notification is lost, whichever replica
made the change. Misses of concurrent calls are read together: while one database read is under
way, the SIRETs missed meanwhile wait for the next read, which fetches them all in one query.
Everything runs on the event loop, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from registry.kernel.change_feed import REGISTRY, ChangeFeed
from registry.rcd.records import EstablishmentRecord
from registry.rcd.store import RcdStore
from server.rpc.coalescing import Coalescer

FEED_BATCH = 1000
READ_BATCH = 1000  # SIRETs fetched by one database read of missed establishments
log = logging.getLogger("interops.registry.cache")


class EstablishmentCache:
    """LRU of establishments by SIRET, invalidated from the change feed."""

    def __init__(
        self, store: RcdStore, max_entries: int, poll_seconds: float, *, changes: ChangeFeed
    ) -> None:
        self.store = store
        self.max_entries = max_entries
        self.poll_seconds = poll_seconds
        self.changes = changes
        self._entries: OrderedDict[str, EstablishmentRecord] = OrderedDict()
        self._position = 0  # the feed position up to which invalidations are applied
        self._follower: asyncio.Task[None] | None = None
        # Missed SIRETs are read together; each answer comes with the feed position at which
        # its read started.
        self._reads: Coalescer[str, tuple[EstablishmentRecord | None, int]] = Coalescer(
            self._read, READ_BATCH
        )

    async def start(self) -> None:
        """Starts following the feed from its current end."""
        self._position = await asyncio.to_thread(self.store.last_position)
        self._follower = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        """Stops following the feed, and reading (calls still waiting get CancelledError)."""
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        await self._reads.stop()

    async def get(self, siret: str) -> EstablishmentRecord | None:
        """The establishment, from the cache or else from the store."""
        record = self._entries.get(siret)
        if record is not None:
            self._entries.move_to_end(siret)
            return record
        record, seen = await self._reads.submit(siret)
        # Cache only if no invalidation ran meanwhile: the read may predate a change the
        # follower has just dropped. Later changes are dropped when the follower sees them.
        if record is not None and self._position == seen and self.max_entries:
            self._entries[siret] = record
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return record

    def _read(self, sirets: list[str]) -> dict[str, tuple[EstablishmentRecord | None, int]]:
        seen = self._position  # read before the query: a change after it is not missed
        found = self.store.get_establishments(sirets)
        return {siret: (found.get(siret), seen) for siret in sirets}

    async def _follow(self) -> None:
        with self.changes.watch(REGISTRY) as changed:
            while True:
                try:
                    changes = await asyncio.to_thread(
                        self.store.changes_after, self._position, FEED_BATCH
                    )
                except Exception:
                    log.exception("cannot read the change feed; the cache is cleared")
                    changes = []
                    self._entries.clear()
                for change in changes:
                    if isinstance(change.record, EstablishmentRecord):
                        self._entries.pop(change.record.siret, None)
                if changes:
                    self._position = changes[-1].position
                if len(changes) < FEED_BATCH:
                    await changed.wait(self.poll_seconds)
