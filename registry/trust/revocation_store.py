"""Revoked blocks, by revocation id, read in order so that every replica follows new ones."""

from __future__ import annotations

import time

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from registry.trust.schema import revocations


class RevocationStore:
    """Records revocations and lists those after a position."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def revoke(self, revocation_id: bytes) -> None:
        """Revokes a block; revoking it again changes nothing."""
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(revocations).values(
                        revocation_id=revocation_id, revoked_at=int(time.time())
                    )
                )
        except IntegrityError:
            pass

    def after(self, position: int) -> tuple[list[bytes], int]:
        """Revocation ids recorded after `position`, and the new position."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(revocations.c.id, revocations.c.revocation_id)
                .where(revocations.c.id > position)
                .order_by(revocations.c.id)
            ).all()
        return [bytes(row.revocation_id) for row in rows], (rows[-1].id if rows else position)
