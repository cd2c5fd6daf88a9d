"""Worker processes that read deposits (registry/dsn/deposit_reading.py `read_whole`), scanning
them and reading them at once as they are deposited (registry/dsn/scan.py
`scan_and_read_whole`, the reading then kept for the pipeline): reading a deposit (validation,
relations, routing) is pure Python, and one process's interpreter runs
one thread of Python at a time, so the node's calls, its database work and the readings would
otherwise share one core. The workers take the readings; the node keeps the database, the keys
and the sealing.

One pool per process, started on first use with `spawn` (never `fork`: the node's gRPC threads
do not survive one), shared by every pipeline of the process (tests run several nodes in one).
A pool whose worker died is replaced, and the reading that failed with it is done in the
node's process instead. A worker whose node died (SIGKILL, the OOM killer: no shutdown) ends
within a second or so: it waits on a queue whose writing end it holds itself, and would
otherwise wait forever.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from registry.dsn.deposit_reading import DepositReading, read_whole
from registry.dsn.routing import Router

log = logging.getLogger("interops.dsn")
T = TypeVar("T")
# A deposit of at most this many bytes is read (and scanned, on its way in) whole in a worker; a
# larger one streams through the node's process (memory holds one employee of it, never the
# file).
WHOLE_BYTES = 2 << 20


class _Shared:
    """The process's pool, None until first used or once broken."""

    lock = threading.Lock()
    pool: ProcessPoolExecutor | None = None


def default_workers() -> int:
    """As many workers as cores, none on a single core (a worker would only take turns with
    the node's own process)."""
    cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


# How often a worker looks whether its node is still there.
PARENT_CHECK_SECONDS = 0.5


def _end_with_parent(parent: int) -> None:
    """A worker's initializer: a thread that ends the worker once `parent` is gone (the
    worker is then adopted by another process)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _the_pool(workers: int) -> ProcessPoolExecutor:
    with _Shared.lock:
        if _Shared.pool is None:
            context = multiprocessing.get_context("spawn")
            _Shared.pool = ProcessPoolExecutor(
                workers, mp_context=context, initializer=_end_with_parent,
                initargs=(os.getpid(),),
            )  # fmt: skip
        return _Shared.pool


def _forget(broken: ProcessPoolExecutor) -> None:
    with _Shared.lock:
        if _Shared.pool is broken:
            _Shared.pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def _ready() -> int:
    """A worker's answer once it runs: it has imported what a reading needs (this module's
    imports) on the way."""
    return os.getpid()


def warm(workers: int) -> None:
    """Starts the process's pool now and waits until each worker answers: their start (some
    0.6 s of CPU each, importing the reader, the norm and routing) is paid as the node starts,
    not by its first deposits. A pool that breaks meanwhile is replaced on its next use."""
    pool = _the_pool(workers)
    try:
        # Submitted at once, so that none finds a worker idle: the pool starts one for each.
        for started in [pool.submit(_ready) for _ in range(workers)]:
            started.result()
    except BrokenProcessPool:
        _forget(pool)


def run_in_worker(workers: int, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker process (a module-level function: the worker imports it;
    its arguments and result cross the process boundary); in this one when the pool broke (a
    worker killed), the pool being replaced for the next call."""
    pool = _the_pool(workers)
    try:
        return pool.submit(function, *args).result()
    except BrokenProcessPool:
        log.warning("a deposit reading worker died; its pool is replaced")
        _forget(pool)
        return function(*args)


def read_in_worker(
    workers: int, data: bytes, sirets: Collection[str], router: Router
) -> DepositReading:
    """`read_whole(data, sirets, router)` in a worker process (see `run_in_worker`)."""
    return run_in_worker(workers, read_whole, data, sirets, router)
