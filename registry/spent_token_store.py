"""Spent single-use keys (navigation tokens, proof nonces) shared by every replica: the first
insert of a key wins, and a key is forgotten once it could no longer be accepted anyway."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError

from registry.trust_schema import spent_tokens

PURGE_EVERY = 1000


class SpentTokenStore:
    """A ReplayCache (token_suite.replay) in the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._inserts = 0

    def first_use(self, key: bytes, until: float) -> bool:
        """True the first time `key` is spent, False on any later use before `until`."""
        digest = hashlib.sha256(key).digest()
        now = int(time.time())
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(spent_tokens).values(digest=digest, until=int(until) + 1))
        except IntegrityError:
            # Spent already; reusable only if its record has run out (and then only once).
            with self.engine.begin() as connection:
                renewed = connection.execute(
                    update(spent_tokens)
                    .where(spent_tokens.c.digest == digest, spent_tokens.c.until < now)
                    .values(until=int(until) + 1)
                )
            return renewed.rowcount == 1
        self._inserts += 1
        if self._inserts % PURGE_EVERY == 0:
            self.purge(now)
        return True

    def purge(self, now: float | None = None) -> int:
        """Forgets keys past their time; returns how many."""
        moment = int(time.time() if now is None else now)
        with self.engine.begin() as connection:
            done = connection.execute(delete(spent_tokens).where(spent_tokens.c.until < moment))
        return int(done.rowcount)
