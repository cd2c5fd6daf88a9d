"""Spent single-use keys (navigation tokens, proof nonces) shared by every replica: the first
insert of a key wins, and a key is forgotten once it could no longer be accepted anyway (a
proof or a token past its time fails its own checks before its key is looked up)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from registry.trust.schema import spent_tokens

PURGE_EVERY = 1000


class SpentTokenStore:
    """A ReplayCache (token_suite.replay) in the database, spending many keys per transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert
        self._inserts = 0

    def first_uses(self, entries: Sequence[tuple[bytes, float]]) -> list[bool]:
        """For each (key, until), True if this spends it, False if it was spent before (here,
        by another replica, or earlier in `entries`)."""
        if not entries:
            return []
        digests = [hashlib.sha256(key).digest() for key, _ in entries]
        rows = {digest: int(until) + 1 for digest, (_, until) in zip(digests, entries, strict=True)}
        statement = (
            self._insert(spent_tokens)
            .values([{"digest": d, "until": u} for d, u in rows.items()])
            .on_conflict_do_nothing(index_elements=["digest"])
            .returning(spent_tokens.c.digest)
        )
        with self.engine.begin() as connection:
            inserted = {bytes(d) for d in connection.execute(statement).scalars()}
        self._inserts += len(inserted)
        if self._inserts >= PURGE_EVERY:
            self._inserts = 0
            self.purge()
        spent = []
        for digest in digests:
            spent.append(digest in inserted)
            inserted.discard(digest)  # a second occurrence in the same batch is a replay
        return spent

    def first_use(self, key: bytes, until: float) -> bool:
        """True the first time `key` is spent, False on any later use."""
        return self.first_uses([(key, until)])[0]

    def purge(self, now: float | None = None) -> int:
        """Forgets keys past their time; returns how many."""
        moment = int(time.time() if now is None else now)
        with self.engine.begin() as connection:
            done = connection.execute(delete(spent_tokens).where(spent_tokens.c.until < moment))
        return int(done.rowcount)
