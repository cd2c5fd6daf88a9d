"""Coalescing of concurrent calls into batches: while one batch runs (in a thread), the keys
submitted meanwhile wait for the next one, which handles them all at once. The establishment
cache reads its misses this way, and the node records spent single-use keys this way (one
transaction for many calls: a group commit)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """Runs `run(keys) -> {key: value}` in a thread for batches of submitted keys."""

    def __init__(
        self, run: Callable[[list[K]], Mapping[K, V]], batch_size: int = 1000, pace: float = 0.0
    ) -> None:
        self._run = run
        self.batch_size = batch_size
        # At most a batch started every `pace` seconds: under load, fewer and larger batches
        # (each costs the same whatever its size); the first call on an idle node waits not.
        self.pace = pace
        self._started = 0.0
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, key: K) -> V:
        """The value for `key` from the next batch; a key already waiting shares its answer."""
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            self._waiting[key] = waiting
            if self._worker is None or self._worker.done():
                self._worker = asyncio.create_task(self._work())
        # Shielded: a caller that gives up must not cancel the answer others wait for.
        return await asyncio.shield(waiting)

    async def _work(self) -> None:
        while self._waiting:
            wait = self._started + self.pace - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._started = time.monotonic()
            keys = list(self._waiting)[: self.batch_size]
            batch = {key: self._waiting.pop(key) for key in keys}
            try:
                found = await asyncio.to_thread(self._run, keys)
            except asyncio.CancelledError:  # the node stops
                for waiting in batch.values():
                    waiting.cancel()
                raise
            except Exception as error:  # each waiting call reports it
                for waiting in batch.values():
                    waiting.set_exception(error)
                    waiting.exception()  # retrieved, even if every caller gave up
                continue
            for key, waiting in batch.items():
                if not waiting.done():
                    waiting.set_result(found[key])

    async def stop(self) -> None:
        """Stops the batches; calls still waiting get CancelledError."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for waiting in self._waiting.values():
            waiting.cancel()
        self._waiting.clear()
