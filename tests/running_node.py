"""A real node for tests: started in-process on a loopback port chosen by the system, with its
own event loop in a background thread, so that tests call it through real channels."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from server.config import Settings
from server.node import Node

T = TypeVar("T")


class RunningNode:
    """A node serving on 127.0.0.1:<port> until stop()."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        extra_handlers: Sequence[Any] = (),
        **settings: Any,
    ) -> None:
        self.settings = replace(
            Settings(),
            grpc_address="127.0.0.1:0",
            database_url=database_url,
            data_dir=data_dir,
            tracing_exporter="none",
            feed_poll_seconds=0.05,
            shutdown_grace_seconds=2.0,
            **settings,
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.node: Node = self.run(self._create(extra_handlers))
        self.port = self.run(self.node.start())
        self.address = f"127.0.0.1:{self.port}"

    async def _create(self, extra_handlers: Sequence[Any]) -> Node:
        return Node(self.settings, extra_handlers)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the node's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def stop(self) -> None:
        """Stops the node and its loop."""
        self.run(self.node.stop(grace=1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
