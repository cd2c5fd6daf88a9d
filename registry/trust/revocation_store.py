"""Revocations, read in order so that every replica follows new ones: revoked blocks (by
revocation id) and subjects' cutoffs (every block of the subject that starts before the cutoff
is revoked: a struck-off declarant, a habilitation removed, a mandate ended).

Each row is kept until no chain it revokes can still be valid, then pruned; the row with the
greatest id is always kept, so that the published list's sequence never goes back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from registry.kernel.database import reading
from registry.trust.schema import revocations
from token_suite import profiles

# Kept past a chain's expiry for the verifiers' leeway (30 s by default) and their clocks.
_KEPT_AFTER_EXPIRY = 300
# No block of a subject that started before a cutoff outlives it by more than this.
_LONGEST_LIFETIME = max(profiles.MAX_LIFETIME.values())


class Revocation(NamedTuple):
    """One revocation: a block (`revocation_id`) or a subject's cutoff (`subject`, `before`),
    which revokes nothing after `until`."""

    position: int
    revocation_id: bytes | None
    subject: str | None
    before: int
    until: int


def cut_off(connection: Connection, subjects: Iterable[str], now: float | None = None) -> None:
    """Revokes, in the caller's transaction, every block of these subjects (as chains name
    them: "declarant:<id>") that started before now.

    The cutoff is the next whole second: a block starts at a whole second, so one signed in the
    same second as the change is cut too (fail closed; a new sign-in a second later is not)."""
    moment = time.time() if now is None else now
    before = math.floor(moment) + 1
    rows = [
        {"subject": subject, "before": before, "revoked_at": int(moment),
         "until": before + _LONGEST_LIFETIME + _KEPT_AFTER_EXPIRY}
        for subject in dict.fromkeys(subjects)
    ]  # fmt: skip
    if rows:
        connection.execute(insert(revocations), rows)


class RevocationStore:
    """Records revocations, lists those after a position, and prunes those that revoke no
    valid chain any more."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def revoke(self, revocation_id: bytes, expires: int, now: float | None = None) -> None:
        """Revokes a block of a chain that expires at `expires`; revoking it again changes
        nothing."""
        moment = int(time.time() if now is None else now)
        try:
            with self.engine.begin() as connection:
                row = {"revocation_id": revocation_id, "revoked_at": moment,
                       "until": max(expires, moment) + _KEPT_AFTER_EXPIRY}  # fmt: skip
                connection.execute(insert(revocations).values(row))
        except IntegrityError:
            pass

    def cut_off(self, subjects: Iterable[str], now: float | None = None) -> None:
        """`cut_off` in a transaction of its own."""
        with self.engine.begin() as connection:
            cut_off(connection, subjects, now)

    def cutoff_of(self, subject: str) -> int:
        """The latest cutoff of the subject (0: none): its blocks must start at it or later."""
        with reading(self.engine) as connection:
            latest = connection.execute(
                select(func.max(revocations.c.before)).where(revocations.c.subject == subject)
            ).scalar()
        return int(latest or 0)

    def after(self, position: int) -> tuple[list[Revocation], int]:
        """Revocations recorded after `position`, and the new position."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(revocations).where(revocations.c.id > position).order_by(revocations.c.id)
            ).all()
        found = [
            Revocation(row.id, None if row.revocation_id is None else bytes(row.revocation_id),
                       row.subject, row.before or 0, row.until)
            for row in rows
        ]  # fmt: skip
        return found, (rows[-1].id if rows else position)

    def prune(self, now: float | None = None) -> int:
        """Deletes the revocations that revoke no valid chain any more, but the last one;
        returns how many."""
        moment = int(time.time() if now is None else now)
        with self.engine.begin() as connection:
            last = connection.execute(select(func.max(revocations.c.id))).scalar()
            if last is None:
                return 0
            return connection.execute(
                delete(revocations).where(revocations.c.until < moment, revocations.c.id < last)
            ).rowcount
