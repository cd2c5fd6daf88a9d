"""The node's background workers (DSN pipeline, notification dispatch, bulk habilitation files):
rounds of work, each started when woken or after the poll interval, until stopped. They are
woken by the calls of their node that bring work, and by the work any node brings through the
change feed (registry/kernel/change_feed.py, wired in server/node.py): the poll interval is the
fallback for a lost notification, and the clock for work that falls due later (retries)."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundLoop:
    """Runs `round` again and again; `wake` starts the next round at once. `stop` cancels the
    round under way, which the next start does again."""

    name = "background"

    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts working (first on what a previous run left)."""
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """New work arrived."""
        self._wake.set()

    async def stop(self) -> None:
        """Stops after the step under way."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def round(self) -> None:
        """One round of work; it handles its own failures (the next round retries)."""
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await self.round()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the wait ends, and the loop then never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
