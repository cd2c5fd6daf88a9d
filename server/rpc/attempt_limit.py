"""A sliding-window limit of attempts per key, in one process's memory: revocations per revoking
party. (Sign-in attempts are limited in the database, for every node: registry/trust/
sign_in_limits.py.)"""

from __future__ import annotations

import time
from collections import deque


class AttemptLimit:
    """At most `limit` attempts per key in any `seconds`."""

    def __init__(self, limit: int = 10, seconds: float = 60.0, keys: int = 100_000) -> None:
        self.limit = limit
        self.seconds = seconds
        self.keys = keys
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Counts an attempt; False when the key made too many lately."""
        now = time.monotonic()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.seconds:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > self.keys:  # forget the quiet ones
            for quiet in [k for k, v in self._seen.items() if not v][: self.keys // 10 or 1]:
                del self._seen[quiet]
        return True

    def retry_after(self, key: str) -> int:
        """Seconds until the key may try again."""
        seen = self._seen.get(key)
        if not seen:
            return 0
        return max(1, int(seen[0] + self.seconds - time.monotonic()) + 1)
