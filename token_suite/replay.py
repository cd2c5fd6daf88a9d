"""Single use: a cache of spent token ids and proof nonces, each kept until it could no longer
be accepted anyway. This one lives in memory; the backbone adds a database behind it so that
several replicas share what was spent."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol


class ReplayCache(Protocol):
    """Records a single-use key; False when it was used already."""

    def first_use(self, key: bytes, until: float) -> bool:
        """True the first time `key` is seen before `until` (Unix seconds), False after."""
        ...


class MemoryReplayCache:
    """A bounded in-memory ReplayCache; when full of live keys it refuses new ones (fails
    closed) rather than forget a spent key."""

    def __init__(self, capacity: int = 1_000_000, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self._clock = clock
        self._until: dict[bytes, float] = {}
        self._expiries: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()

    def _purge(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            until, key = heapq.heappop(self._expiries)
            if self._until.get(key) == until:
                del self._until[key]

    def first_use(self, key: bytes, until: float) -> bool:
        """See ReplayCache."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            if key in self._until:
                return False
            if len(self._until) >= self.capacity:
                return False
            self._until[key] = until
            heapq.heappush(self._expiries, (until, key))
            return True

    def __len__(self) -> int:
        return len(self._until)
