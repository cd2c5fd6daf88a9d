"""Spent single-use keys (navigation tokens, proof nonces) shared by every replica: the first
insert of a key wins, and a key is forgotten once it could no longer be accepted anyway (a
proof or a token past its time fails its own checks before its key is looked up).

Every authenticated call spends its proof's nonce here, so a batch is one plain SQL statement
(PostgreSQL: of fixed text, over arrays; SQLite: a VALUES row per key), not one SQLAlchemy
builds and compiles per batch: that cost, paid on the node's busiest path, was most of what
sharing the nonces cost (README, "Token chains")."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, delete

from registry.trust.schema import spent_tokens

PURGE_EVERY = 1000
_POSTGRESQL = (
    "INSERT INTO spent_tokens (digest, until)"
    " SELECT * FROM unnest(%(digests)s::bytea[], %(untils)s::bigint[])"
    " ON CONFLICT (digest) DO NOTHING RETURNING digest"
)
_SQLITE = (
    "INSERT INTO spent_tokens (digest, until) VALUES {}"
    " ON CONFLICT (digest) DO NOTHING RETURNING digest"
)
_SQLITE_ROW = "(?, ?)"


class SpentTokenStore:
    """A ReplayCache (token_suite.replay) in the database, spending many keys per transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        self._inserts = 0

    def first_uses(self, entries: Sequence[tuple[bytes, float]]) -> list[bool]:
        """For each (key, until), True if this spends it, False if it was spent before (here,
        by another replica, or earlier in `entries`)."""
        if not entries:
            return []
        digests = [hashlib.sha256(key).digest() for key, _ in entries]
        rows: dict[bytes, int] = {}
        for digest, (_, until) in zip(digests, entries, strict=True):
            rows.setdefault(digest, int(until) + 1)
        with self.engine.begin() as connection:
            inserted = self._insert(connection, rows)
        self._inserts += len(inserted)
        if self._inserts >= PURGE_EVERY:
            self._inserts = 0
            self.purge()
        spent = []
        for digest in digests:
            spent.append(digest in inserted)
            inserted.discard(digest)  # a second occurrence in the same batch is a replay
        return spent

    def _insert(self, connection: Connection, rows: dict[bytes, int]) -> set[bytes]:
        """Inserts the rows whose digest is not there yet; returns their digests."""
        if self._postgresql:
            found = connection.exec_driver_sql(
                _POSTGRESQL, {"digests": list(rows), "untils": list(rows.values())}
            )
        else:
            found = connection.exec_driver_sql(
                _SQLITE.format(", ".join([_SQLITE_ROW] * len(rows))),
                tuple(value for row in rows.items() for value in row),
            )
        return {bytes(digest) for (digest,) in found}

    def first_use(self, key: bytes, until: float) -> bool:
        """True the first time `key` is spent, False on any later use."""
        return self.first_uses([(key, until)])[0]

    def purge(self, now: float | None = None) -> int:
        """Forgets keys past their time; returns how many."""
        moment = int(time.time() if now is None else now)
        with self.engine.begin() as connection:
            done = connection.execute(delete(spent_tokens).where(spent_tokens.c.until < moment))
        return int(done.rowcount)
