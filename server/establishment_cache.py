"""A read-through cache of establishments in the node, kept fresh by following the change feed.

GetEstablishment is the registry's hot call. The cache holds the most recently read
establishments; a background task reads the change feed and drops every SIRET that changed, so a
cached answer is at most one poll interval old (INTEROPS_FEED_POLL_SECONDS), whichever replica
made the change. Misses of concurrent calls are read together: while one database read is under
way, the SIRETs missed meanwhile wait for the next read, which fetches them all in one query.
Everything runs on the event loop, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from registry.rcd_records import EstablishmentRecord
from registry.rcd_store import RcdStore

FEED_BATCH = 1000
READ_BATCH = 1000  # SIRETs fetched by one database read of missed establishments
log = logging.getLogger("interops.registry.cache")


class EstablishmentCache:
    """LRU of establishments by SIRET, invalidated from the change feed."""

    def __init__(self, store: RcdStore, max_entries: int, poll_seconds: float) -> None:
        self.store = store
        self.max_entries = max_entries
        self.poll_seconds = poll_seconds
        self._entries: OrderedDict[str, EstablishmentRecord] = OrderedDict()
        self._position = 0  # the feed position up to which invalidations are applied
        self._follower: asyncio.Task[None] | None = None
        # Missed SIRETs waiting for the next database read, and the task doing the reads.
        self._missed: dict[str, asyncio.Future[EstablishmentRecord | None]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts following the feed from its current end."""
        self._position = await asyncio.to_thread(self.store.last_position)
        self._follower = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        """Stops following the feed, and reading (calls still waiting get CancelledError)."""
        for task in (self._follower, self._reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for waiting in self._missed.values():
            waiting.cancel()
        self._missed.clear()

    async def get(self, siret: str) -> EstablishmentRecord | None:
        """The establishment, from the cache or else from the store."""
        record = self._entries.get(siret)
        if record is not None:
            self._entries.move_to_end(siret)
            return record
        waiting = self._missed.get(siret)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            self._missed[siret] = waiting
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read_missed())
        # Shielded: a caller that gives up must not cancel the answer others wait for.
        return await asyncio.shield(waiting)

    async def _read_missed(self) -> None:
        while self._missed:
            sirets = list(self._missed)[:READ_BATCH]
            batch = {siret: self._missed.pop(siret) for siret in sirets}
            seen = self._position
            try:
                found = await asyncio.to_thread(self.store.get_establishments, sirets)
            except asyncio.CancelledError:  # the node stops
                for waiting in batch.values():
                    waiting.cancel()
                raise
            except Exception as error:  # each waiting call reports it
                for waiting in batch.values():
                    waiting.set_exception(error)
                    waiting.exception()  # retrieved, even if every caller gave up
                continue
            for siret, waiting in batch.items():
                record = found.get(siret)
                # Cache only if no invalidation ran meanwhile: the read may predate a change the
                # follower has just dropped. Later changes are dropped when the follower sees them.
                if record is not None and self._position == seen and self.max_entries:
                    self._entries[siret] = record
                    if len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
                waiting.set_result(record)

    async def _follow(self) -> None:
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
                await asyncio.sleep(self.poll_seconds)
