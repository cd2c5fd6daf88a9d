"""How the node's background loops wait between rounds: until woken, or their poll interval."""

from __future__ import annotations

import asyncio
import contextlib


async def woken_or_timed_out(wake: asyncio.Event, seconds: float) -> None:
    """Returns when `wake` is set or after `seconds`. A cancellation always goes through
    (asyncio.wait_for can swallow one that arrives as the wait ends, on Python 3.11, and the
    loop that called it then never stops)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
