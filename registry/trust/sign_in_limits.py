"""How often anyone may try to sign in, shared by every sign-in door (the web form, REST and
gRPC IssueToken, an administrator's application, an activation) and by every node of a
deployment, since it is kept in the database.

Two keys count each attempt:
- the identity tried (the digest of the portal triplet, whether an account has it or not, so
  that an unknown identity and a known one are throttled alike): a few attempts are free, then
  each further one doubles the wait before the next is even checked, up to 15 minutes. Nobody
  is ever locked out: a stranger's guesses make the owner wait at most that long, a success
  clears the count, and so may an administrator or a letter's key (`clear`);
- the source (the client's address; an IPv6 address by its /64): at most a number of attempts
  a minute, whatever identities they try.

An attempt is counted when it is admitted, before its password is checked, so that guesses sent
at once cannot all slip in between the check of the limit and the count of their failures; a
success gives its source's attempt back. The table holds digests only (no address, no name),
and forgets a key a day after its last attempt.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Engine, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registry.trust.schema import sign_in_limits

# Failures of an identity that cost nothing; each further one doubles the wait, from
# FIRST_DELAY up to MAX_DELAY seconds.
FREE_FAILURES = 5
FIRST_DELAY = 1
MAX_DELAY = 15 * 60
# Attempts from one source in a window of this many seconds.
SOURCE_ATTEMPTS = 20
SOURCE_WINDOW = 60
# A key not tried for this long is forgotten; the table is pruned every PRUNE_EVERY admissions.
FORGET_AFTER = 24 * 3600
PRUNE_EVERY = 1000


def source_name(address: str) -> str:
    """The source an address counts as: an IPv4 address itself (an IPv4-mapped IPv6 one too),
    an IPv6 address by its /64 (one subscriber's network), anything else as it is."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _identity_key(identity: bytes) -> bytes:
    return hashlib.sha256(b"interops.sign-in.identity\x00" + identity).digest()


def _source_key(source: str) -> bytes:
    return hashlib.sha256(b"interops.sign-in.source\x00" + source_name(source).encode()).digest()


class SignInLimits:
    """The shared limit of sign-in attempts, per identity and per source."""

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
        wait = self._take(_source_key(source), _source_counts(moment, self.source_attempts),
                          moment)  # fmt: skip
        if wait:
            return wait
        return self._take(_identity_key(identity), _identity_counts(moment), moment)

    def succeeded(self, identity: bytes, source: str) -> None:
        """The attempt admitted gave the right secret (a password, even an inactive account's;
        an answer, a code): the identity's count is cleared and the source gets its attempt
        back."""
        self.clear(identity)
        with self.engine.begin() as connection:
            connection.execute(
                update(sign_in_limits)
                .where(sign_in_limits.c.digest == _source_key(source))
                .where(sign_in_limits.c.attempts > 0)
                .values(attempts=sign_in_limits.c.attempts - 1)
            )

    def clear(self, identity: bytes) -> None:
        """Forgets the identity's failures: its next attempt is checked at once (an
        administrator's unlock, a letter's key)."""
        with self.engine.begin() as connection:
            connection.execute(
                delete(sign_in_limits).where(sign_in_limits.c.digest == _identity_key(identity))
            )

    def prune(self, now: float | None = None) -> int:
        """Forgets the keys not tried for FORGET_AFTER seconds; returns how many."""
        moment = time.time() if now is None else now
        with self.engine.begin() as connection:
            done = connection.execute(
                delete(sign_in_limits).where(sign_in_limits.c.seen_at < moment - FORGET_AFTER)
            )
        return int(done.rowcount)

    def _take(self, key: bytes, counts: _Counts, moment: float) -> float:
        """Counts an attempt on the key in one statement (the row is locked meanwhile, so that
        attempts at once are counted one after the other); the wait when it may not."""
        first, then, admitted = counts
        statement = (
            self._insert(sign_in_limits)
            .values(digest=key, seen_at=int(moment), **first)
            .on_conflict_do_update(index_elements=[sign_in_limits.c.digest],
                                   set_={**then, "seen_at": int(moment)}, where=admitted)
            .returning(sign_in_limits.c.attempts)
        )  # fmt: skip
        with self.engine.begin() as connection:
            if connection.execute(statement).first() is not None:
                return 0.0
            next_at = connection.execute(
                select(sign_in_limits.c.next_at).where(sign_in_limits.c.digest == key)
            ).scalar()
        # At least a millisecond: a wait that ended (or a count cleared) meanwhile.
        return max(int(next_at or 0) / 1000 - moment, 0.001)


# A new row's columns, the update of an existing one, and when the update is allowed.
_Counts = tuple[dict[str, Any], dict[str, Any], ColumnElement[bool]]


def _identity_counts(moment: float) -> _Counts:
    """The n-th attempt on an identity since its last success makes the next wait
    0 while n <= FREE_FAILURES, then FIRST_DELAY doubled each time up to MAX_DELAY."""
    table = sign_in_limits.c
    now_ms = int(moment * 1000)
    free = table.attempts + 1 <= FREE_FAILURES
    delay = case(
        (free, 0),
        (table.delay == 0, FIRST_DELAY),
        (table.delay * 2 >= MAX_DELAY, MAX_DELAY),
        else_=table.delay * 2,
    )
    return (
        {"attempts": 1, "delay": 0, "next_at": 0},  # FREE_FAILURES >= 1
        {"attempts": table.attempts + 1, "delay": delay,
         "next_at": case((free, table.next_at),
                         else_=literal(now_ms, BigInteger) + delay * 1000)},
        table.next_at <= now_ms,
    )  # fmt: skip


def _source_counts(moment: float, most: int) -> _Counts:
    """A source's attempts in its current window (`next_at`: the window's end), `most` at
    most."""
    table = sign_in_limits.c
    now_ms = int(moment * 1000)
    window_ends = now_ms + SOURCE_WINDOW * 1000
    ends = literal(window_ends, BigInteger)
    ended = table.next_at <= now_ms
    return (
        {"attempts": 1, "delay": 0, "next_at": window_ends},
        {"attempts": case((ended, 1), else_=table.attempts + 1),
         "next_at": case((ended, ends), else_=table.next_at)},
        or_(ended, table.attempts < most),
    )  # fmt: skip
