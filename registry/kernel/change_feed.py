"""What changed in the database, for the followers and workers of this node to look again.

Followed streams (a deposit to its end, an organism's shares, a declarant's returns, held
notifications, operations, the registry's feed) and background workers (the DSN pipeline,
notification dispatch, bulk habilitation files) wait here instead of polling, with their poll
interval kept as a timeout: a lost notification costs at most one interval, never a follower.

On PostgreSQL the database says what changed: migration 0023's triggers NOTIFY a few channels
(below) with a small key, and each node holds one connection that LISTENs to them all (not one
per stream), whichever node wrote. When that connection is lost, everyone is woken to look again,
then again once it is back. On SQLite (one node, one process) the node's own commits feed the
same waiters: which of the tables below a committed transaction wrote, woken without a key.

Waiting is coalesced: a watch is a flag, not a queue. However many changes arrive while its
follower reads, the follower is woken once and reads once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, event
from sqlalchemy.sql.dml import Insert, Update, UpdateBase

log = logging.getLogger("interops.changes")

# The channels, with their payload: a key saying whose rows changed, or "" for everyone.
DEPOSIT = "interops_deposit"  # a deposit's id: it changed (its version moved)
DSN_WORK = "interops_dsn_work"  # "": a deposit to validate or route arrived
DELIVERY = "interops_delivery"  # an organism's code: a share of a deposit for it
RETURN = "interops_return"  # a declarant's token subject: a return for it
NOTIFICATION = "interops_notification"  # a SIREN: notifications to fetch on the API channel
NOTIFY_SEND = "interops_notify_send"  # "": notifications sent, deliveries to dispatch
OPERATION = "interops_operation"  # an operation's id: it progressed or ended
BULK_FILE = "interops_bulk_file"  # "": a bulk habilitation file queued
REGISTRY = "interops_registry"  # "": companies or establishments changed
CHANNELS = (
    DEPOSIT, DSN_WORK, DELIVERY, RETURN, NOTIFICATION, NOTIFY_SEND, OPERATION, BULK_FILE, REGISTRY
)  # fmt: skip

# SQLite: the channels a committed INSERT or UPDATE of a table wakes (the triggers of migration
# 0023 say the same for PostgreSQL, with keys).
_LOCAL_CHANNELS: dict[tuple[str, type[UpdateBase]], tuple[str, ...]] = {
    ("deposits", Insert): (DEPOSIT, DSN_WORK),
    ("deposits", Update): (DEPOSIT,),
    ("deliveries", Insert): (DELIVERY,),
    ("deposit_returns", Insert): (RETURN,),
    ("notifications", Update): (NOTIFICATION,),
    ("notify_sends", Insert): (NOTIFY_SEND,),
    ("operations", Insert): (OPERATION,),
    ("operations", Update): (OPERATION,),
    ("bulk_files", Insert): (BULK_FILE,),
    ("registry_feed", Update): (REGISTRY,),
}
_PENDING = "interops_changed"  # channels written by the transaction under way (connection info)
_COMMITTED = "interops_committed"  # channels of a transaction being committed

# The listening connection reads or checks that it is alive at least this often.
LIVENESS_SECONDS = 15.0
RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
APPLICATION_NAME = "interops-change-feed"


class Watch:
    """A follower's flag on one channel (some keys of it, or all): raised by a change, lowered
    when `wait` returns. Open it before the follower's first read, so that no change between
    that read and the first wait is missed."""

    def __init__(self, feed: ChangeFeed, channel: str, keys: frozenset[str] | None) -> None:
        self.feed, self.channel, self.keys = feed, channel, keys
        self.flag = asyncio.Event()

    def __enter__(self) -> Watch:
        self.feed._add(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.feed._remove(self)

    async def wait(self, fallback_seconds: float) -> None:
        """Returns once something changed since the last return (at once if it did already),
        or after `fallback_seconds` in any case: the follower then reads again."""
        with contextlib.suppress(TimeoutError):
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the wait ends.
            async with asyncio.timeout(fallback_seconds):
                await self.flag.wait()
        self.flag.clear()


class ChangeFeed:
    """The node's one view of database changes: watches for streams, wake-ups for workers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.listening = engine.dialect.name == "postgresql"
        # channel -> key (None: any key) -> watches
        self._watches: dict[str, dict[str | None, set[Watch]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self._wakers: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.backend_pid = 0  # the listening connection's server process (0: none)
        self.connections = 0  # how many times it connected
        self.received = 0  # notifications received
        self._failures = 0  # connection attempts failed in a row
        if not self.listening:
            self._feed_from_commits()

    # -- for followers and workers ----------------------------------------------------------

    def watch(self, channel: str, keys: str | Iterable[str] | None = None) -> Watch:
        """A watch of changes on `channel` for those keys (None: any); use it in a `with`."""
        chosen = None if keys is None else frozenset((keys,) if isinstance(keys, str) else keys)
        return Watch(self, channel, chosen)

    def on_change(self, channel: str, wake: Callable[[], None]) -> None:
        """Calls `wake` (on the event loop; it must not block) whenever `channel` changes."""
        self._wakers[channel].append(wake)

    def changed(self, channel: str, key: str = "") -> None:
        """Something changed on `channel` for `key` ("": for everyone). Event loop only."""
        if key:
            by_key = self._watches.get(channel, {})
            for watch in (*by_key.get(key, ()), *by_key.get(None, ())):
                watch.flag.set()
        else:
            for watches in self._watches.get(channel, {}).values():
                for watch in watches:
                    watch.flag.set()
        for wake in self._wakers.get(channel, ()):
            wake()

    def wake_everyone(self) -> None:
        """Every watch and worker looks again (changes may have been missed)."""
        for channel in {*self._watches, *self._wakers}:
            self.changed(channel)

    def _add(self, watch: Watch) -> None:
        for key in watch.keys if watch.keys is not None else (None,):
            self._watches[watch.channel][key].add(watch)

    def _remove(self, watch: Watch) -> None:
        by_key = self._watches[watch.channel]
        for key in watch.keys if watch.keys is not None else (None,):
            by_key[key].discard(watch)
            if not by_key[key]:
                del by_key[key]

    # -- running ---------------------------------------------------------------------------

    async def start(self, patience_seconds: float = 10.0) -> None:
        """Starts listening (PostgreSQL), waiting a while for the first connection; without it
        the node starts all the same, its followers polling until it comes."""
        self._loop = asyncio.get_running_loop()
        if not self.listening:
            return
        self._listener = asyncio.create_task(self._listen(), name="change-feed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience_seconds):
                await self._connected.wait()

    async def stop(self) -> None:
        """Stops listening; commits no longer wake anyone."""
        self._loop = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    # -- PostgreSQL ------------------------------------------------------------------------

    def _conninfo(self) -> str:
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _listen(self) -> None:
        while True:
            try:
                await self._listen_once()
            except Exception as error:  # whatever it was: connect again
                if self._failures == 0:  # one line per outage, not per attempt
                    log.warning("change notifications lost (%s); followers poll until they are "
                                "back", type(error).__name__)  # fmt: skip
                self.backend_pid = 0
                self.wake_everyone()
                pause = RECONNECT_SECONDS[min(self._failures, len(RECONNECT_SECONDS) - 1)]
                self._failures += 1
                await asyncio.sleep(pause)

    async def _listen_once(self) -> None:
        """One connection: LISTEN to every channel, then hand each notification over, until
        the connection fails."""
        async with await psycopg.AsyncConnection.connect(
            self._conninfo(),
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=int(LIVENESS_SECONDS),
        ) as connection:
            for channel in CHANNELS:
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.backend_pid = connection.info.backend_pid
            self.connections += 1
            if self._failures:
                log.info("change notifications back")
                self._failures = 0
            # Whatever changed while nobody listened is looked at again.
            self.wake_everyone()
            self._connected.set()
            while True:
                async for notice in connection.notifies(timeout=LIVENESS_SECONDS):
                    self.received += 1
                    self.changed(notice.channel, notice.payload)
                # A dead peer is noticed here, a silent network within the same time.
                async with asyncio.timeout(LIVENESS_SECONDS):
                    await connection.execute("SELECT 1")

    # -- SQLite ----------------------------------------------------------------------------

    def _feed_from_commits(self) -> None:
        """Notes the tables each transaction writes, and wakes their channels once it is
        committed: when the next transaction begins on that connection or it goes back to the
        pool (SQLAlchemy's commit event comes before the commit itself: a follower woken then
        could read the old rows and sleep a whole interval)."""

        def executed(connection: Any, statement: Any, *_: Any) -> None:
            if isinstance(statement, (Insert, Update)):
                kind = Insert if isinstance(statement, Insert) else Update
                channels = _LOCAL_CHANNELS.get((getattr(statement.table, "name", ""), kind))
                if channels:
                    connection.info.setdefault(_PENDING, set()).update(channels)

        def committing(connection: Any) -> None:
            pending = connection.info.pop(_PENDING, None)
            if pending:
                connection.info.setdefault(_COMMITTED, set()).update(pending)

        def rolled_back(connection: Any) -> None:
            connection.info.pop(_PENDING, None)

        def committed(info: dict[Any, Any]) -> None:
            channels = info.pop(_COMMITTED, None)
            loop = self._loop
            if channels and loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self._changed_all, channels)

        event.listen(self.engine, "after_execute", executed)
        event.listen(self.engine, "commit", committing)
        event.listen(self.engine, "rollback", rolled_back)
        event.listen(self.engine, "begin", lambda connection: committed(connection.info))
        event.listen(self.engine.pool, "checkin", lambda _dbapi, record: committed(record.info))

    def _changed_all(self, channels: Iterable[str]) -> None:
        for channel in channels:
            self.changed(channel)
