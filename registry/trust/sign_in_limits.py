"""How often anyone may try to sign in, shared by every sign-in door (the web form, REST and
gRPC IssueToken, an administrator's application, an activation) and by every node of a
deployment, since it is kept in the database.

Each attempt counts in these rows, keyed by digests:
- the source (the client's address; an IPv6 address by its /64): at most a number of attempts
  a minute, whatever identities they try; and an IPv6 source's /48 (one site, 65,536 /64s) ten
  times that, so that spraying /64s buys no more guesses, nor rows, than ten addresses;
- the identity tried (the digest of the portal triplet, whether an account has it or not, so
  that an unknown identity and a known one are throttled alike) from that source: a few
  failures are free, then each further one doubles the wait before that source's next attempt
  on the identity is even checked, up to 15 minutes. A stranger's guesses make only the
  stranger's source wait: the owner, from any other address, is checked at once;
- the identity from all sources together: beyond IDENTITY_FAILURES failures in an hour (many
  addresses guessing one password), each source waits CEILING_DELAY seconds before each of its
  attempts on the identity, a source new to it too; never longer, and never a slot shared by
  all sources, which a stranger could keep taking. The trade-off: a botnet's guesses on one
  identity are bounded by what its addresses may each make (their doubling waits, their
  budgets a minute), each costing it that fixed wait first, not by a number an hour for the
  identity; the owner, from anywhere, waits at most CEILING_DELAY seconds, then is checked.

A success clears the identity's counts from every source (the owner proved itself) and gives
its source back its attempt; so does an administrator's unlock or a letter's key (`clear`),
without the attempt. An attempt is counted when it is admitted, before its password is checked,
so that guesses sent at once cannot all slip in between the check of the limit and the count
of their failures. The table holds digests only (no address, no name); a window is forgotten
once it ends, a count of failures a day after its last attempt.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    delete,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from registry.trust.schema import sign_in_limits

# Failures of an identity from one source that cost nothing; each further one doubles that
# source's wait, from FIRST_DELAY up to MAX_DELAY seconds.
FREE_FAILURES = 5
FIRST_DELAY = 1
MAX_DELAY = 15 * 60
# Failures of an identity from all sources in IDENTITY_WINDOW seconds beyond which each source
# waits CEILING_DELAY seconds before each attempt on it.
IDENTITY_FAILURES = 100
IDENTITY_WINDOW = 3600
CEILING_DELAY = 5
# Attempts from one source in a window of this many seconds; from an IPv6 /48, NETWORK_SHARE
# times as many.
SOURCE_ATTEMPTS = 20
SOURCE_WINDOW = 60
NETWORK_SHARE = 10
# A count of failures not tried for this long is forgotten; the table is pruned every
# PRUNE_EVERY admissions.
FORGET_AFTER = 24 * 3600
PRUNE_EVERY = 1000


def source_name(address: str) -> str:
    """The source an address counts as: an IPv4 address itself (an IPv4-mapped IPv6 one too),
    an IPv6 address by its /64 (one subscriber's network), anything else as it is."""
    ip = _address(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def network_name(address: str) -> str | None:
    """The IPv6 /48 (one site) an address belongs to; None for any other address."""
    ip = _address(address)
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    return str(ipaddress.ip_network(f"{ip}/48", strict=False))


def _address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, an IPv4-mapped IPv6 one as IPv4; None when it is no address."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _key(kind: bytes, *parts: bytes) -> bytes:
    """The digest a row is kept under: of its kind and of its parts, nothing readable."""
    return hashlib.sha256(
        b"interops.sign-in." + kind + b"".join(b"\x00" + p for p in parts)
    ).digest()


def _identity_key(identity: bytes) -> bytes:
    return _key(b"identity", identity)


def _pair_key(identity: bytes, source: str) -> bytes:
    return _key(b"identity-source", identity, source_name(source).encode())


class SignInLimits:
    """The shared limit of sign-in attempts, per source, per identity from a source and per
    identity from all sources."""

    def __init__(self, engine: Engine, source_attempts: int = SOURCE_ATTEMPTS) -> None:
        self.engine = engine
        # Attempts one source may make in SOURCE_WINDOW seconds.
        self.source_attempts = source_attempts
        self._insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        self._admitted = 0

    def admit(self, identity: bytes, source: str, now: float | None = None) -> float:
        """Counts an attempt on `identity` (an identity digest) from `source` (a client
        address) before anything is checked: 0.0 when it may go on (it counts as a failure
        until `succeeded`), else the seconds to wait, and nothing is to be checked (a source
        told to wait is not counted against the identity; an identity told to wait still
        costs its source an attempt, so that asking again and again is no free poll)."""
        moment = time.time() if now is None else now
        self._admitted += 1
        if self._admitted >= PRUNE_EVERY:
            self._admitted = 0
            self.prune(moment)
        # The /48 first: an attempt it refuses leaves no row for a new /64.
        for key, most in self._budgets(source):
            with self.engine.begin() as connection:
                wait = self._take(connection, key,
                                  _window_counts(moment, SOURCE_WINDOW, most), moment)  # fmt: skip
            if wait:
                return wait
        own = _identity_key(identity)
        with self.engine.begin() as connection:
            over = _over_ceiling(connection, own, moment)
            wait = self._take(connection, _pair_key(identity, source),
                              _pair_counts(moment, over, own), moment)  # fmt: skip
        if not wait:
            # Counted apart from the pair's row: no transaction holds the locks of both.
            with self.engine.begin() as connection:
                self._take(connection, own, _window_counts(moment, IDENTITY_WINDOW, None), moment)
        return wait

    def succeeded(self, identity: bytes, source: str) -> None:
        """The attempt admitted gave the right secret (a password, even an inactive account's;
        an answer, a code): the identity's counts are cleared, from every source, and the
        source (and its /48) gets its attempt back."""
        self.clear(identity)
        with self.engine.begin() as connection:
            connection.execute(
                update(sign_in_limits)
                .where(sign_in_limits.c.digest.in_([key for key, _ in self._budgets(source)]))
                .where(sign_in_limits.c.attempts > 0)
                .values(attempts=sign_in_limits.c.attempts - 1)
            )

    def clear(self, identity: bytes) -> None:
        """Forgets the identity's failures, from every source: its next attempt from anywhere
        is checked at once (an administrator's unlock, a letter's key)."""
        own = _identity_key(identity)
        with self.engine.begin() as connection:
            connection.execute(
                delete(sign_in_limits).where(
                    or_(sign_in_limits.c.digest == own, sign_in_limits.c.identity == own)
                )
            )

    def prune(self, now: float | None = None) -> int:
        """Forgets the windows that ended, the rows whose count is back to zero, and the counts
        of failures not tried for FORGET_AFTER seconds; returns how many rows."""
        moment = time.time() if now is None else now
        table = sign_in_limits.c
        done_with = and_(table.next_at <= int(moment * 1000),
                         or_(table.identity.is_(None), table.attempts <= 0))  # fmt: skip
        with self.engine.begin() as connection:
            done = connection.execute(
                delete(sign_in_limits).where(or_(table.seen_at < moment - FORGET_AFTER, done_with))
            )
        return int(done.rowcount)

    def _budgets(self, source: str) -> list[tuple[bytes, int]]:
        """The windows an attempt from the source counts in, with their most attempts, the
        widest first: an IPv6 source's /48, then the source."""
        own = (_key(b"source", source_name(source).encode()), self.source_attempts)
        network = network_name(source)
        if network is None:
            return [own]
        share = self.source_attempts * NETWORK_SHARE
        return [(_key(b"network", network.encode()), share), own]

    def _take(self, connection: Connection, key: bytes, counts: _Counts, moment: float) -> float:
        """Counts an attempt on the key in one statement (the row is locked meanwhile, so that
        attempts at once are counted one after the other); the wait when it may not."""
        first, then, admitted = counts
        statement = (
            self._insert(sign_in_limits)
            .values(digest=key, seen_at=int(moment), **first)
            .on_conflict_do_update(index_elements=[sign_in_limits.c.digest],
                                   set_={**then, "seen_at": int(moment)}, where=admitted)
            .returning(sign_in_limits.c.attempts, sign_in_limits.c.next_at)
        )  # fmt: skip
        row = connection.execute(statement).first()
        if row is not None and row.attempts > 0:
            return 0.0
        if row is None:
            row = connection.execute(
                select(sign_in_limits.c.next_at).where(sign_in_limits.c.digest == key)
            ).first()
        # At least a millisecond: a wait that ended (or a count cleared) meanwhile.
        return max(int(row.next_at if row else 0) / 1000 - moment, 0.001)


# A new row's columns, the update of an existing one, and when the update is allowed (always
# when None).
_Counts = tuple[dict[str, Any], dict[str, Any], ColumnElement[bool] | None]


def _over_ceiling(connection: Connection, own: bytes, moment: float) -> bool:
    """Whether the identity failed IDENTITY_FAILURES times, from all sources, in its current
    window."""
    table = sign_in_limits.c
    found = connection.execute(
        select(table.digest).where(table.digest == own)
        .where(table.attempts >= IDENTITY_FAILURES).where(table.next_at > int(moment * 1000))
    ).first()  # fmt: skip
    return found is not None


def _pair_counts(moment: float, over: bool, own: bytes) -> _Counts:
    """The n-th attempt on an identity from a source since the identity's last success makes
    that source's next wait 0 while n <= FREE_FAILURES, then FIRST_DELAY doubled each time up
    to MAX_DELAY; over the identity's ceiling, at least CEILING_DELAY, and a source new to the
    identity waits CEILING_DELAY before its first attempt is checked. `own`: the identity's
    key, kept on the row so that a success or an unlock finds it."""
    table = sign_in_limits.c
    now_ms = int(moment * 1000)
    free = table.attempts + 1 <= FREE_FAILURES
    delay = case(
        (free, 0),
        (table.delay == 0, FIRST_DELAY),
        (table.delay * 2 >= MAX_DELAY, MAX_DELAY),
        else_=table.delay * 2,
    )
    if over:
        held = case((delay >= CEILING_DELAY, delay), else_=CEILING_DELAY)
        first = {"attempts": 0, "next_at": now_ms + CEILING_DELAY * 1000}  # not yet admitted
        next_at: ColumnElement[int] = literal(now_ms, BigInteger) + held * 1000
    else:
        first = {"attempts": 1, "next_at": 0}  # FREE_FAILURES >= 1
        next_at = case((free, table.next_at), else_=literal(now_ms, BigInteger) + delay * 1000)
    return (
        {**first, "delay": 0, "identity": own},
        {"attempts": table.attempts + 1, "delay": delay, "next_at": next_at},
        table.next_at <= now_ms,
    )


def _window_counts(moment: float, seconds: int, most: int | None) -> _Counts:
    """Attempts in the key's current window of `seconds` (`next_at`: the window's end), `most`
    at most (None: no limit, a count)."""
    table = sign_in_limits.c
    now_ms = int(moment * 1000)
    window_ends = now_ms + seconds * 1000
    ends = literal(window_ends, BigInteger)
    ended = table.next_at <= now_ms
    return (
        {"attempts": 1, "delay": 0, "next_at": window_ends},
        {"attempts": case((ended, 1), else_=table.attempts + 1),
         "next_at": case((ended, ends), else_=table.next_at)},
        None if most is None else or_(ended, table.attempts < most),
    )  # fmt: skip
