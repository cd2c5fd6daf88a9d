"""The web adapter's browser sessions in the database, so that every node's adapter serves every
browser (a round-robin may send each request elsewhere).

A row is found by the SHA-256 of the cookie's session id: the id is a bearer secret and is never
stored. The session itself (the portal chain, the session's private key, the form token, the
person's name...) is an opaque payload to this store, sealed whole with the node's data key
(AES-256-GCM, registry/kernel/sealing.py), bound to the row's digest and expiry: a database
reader learns neither key nor name, and a payload moved to another row, or a row whose expiry
was pushed back, does not open. Every node must hold the same data key (one `keys/` volume).

Expired rows are deleted, and beyond `capacity` rows the oldest anonymous ones, then (only if
signed-in sessions alone fill it) the oldest signed-in ones, every PRUNE_EVERY writes or
PRUNE_SECONDS (whichever comes first) by each node: anybody can make anonymous sessions by
fetching pages, and a flood of them must not sign people out.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete, func, insert, select

from registry.kernel.database import reading
from registry.kernel.sealing import seal, unseal
from registry.trust.schema import web_sessions

log = logging.getLogger("interops.trust")

CAPACITY = 100_000
PRUNE_EVERY = 100
PRUNE_SECONDS = 60.0
# Longer ids are not ours (ours are 43 characters): not worth a hash and a query.
MAX_ID_CHARS = 128


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def _bound(digest: bytes, expires: int) -> bytes:
    """What a row's seal is bound to."""
    return b"web_session\0" + digest + expires.to_bytes(8, "big")


class WebSessionStore:
    """Sealed session payloads by session id (the SessionRows of server/web/sessions.py)."""

    def __init__(self, engine: Engine, sealer: AESGCM, capacity: int = CAPACITY) -> None:
        self.engine = engine
        self.sealer = sealer
        self.capacity = capacity
        self._lock = threading.Lock()
        self._writes = 0
        self._pruned_at = time.monotonic()

    def read(self, session_id: str, now: float) -> bytes | None:
        """The payload of a live session, or None (unknown, expired, ended, or not opening)."""
        if not session_id or len(session_id) > MAX_ID_CHARS:
            return None
        digest = _digest(session_id)
        with reading(self.engine) as connection:
            row = connection.execute(
                select(web_sessions.c.sealed, web_sessions.c.expires).where(
                    web_sessions.c.digest == digest, web_sessions.c.expires > int(now)
                )
            ).first()
        if row is None:
            return None
        try:
            return unseal(self.sealer, bytes(row.sealed), _bound(digest, row.expires))
        except InvalidTag:  # altered, moved, or sealed under another node's data key
            log.warning("a web session row does not open with this node's data key")
            return None

    def write(
        self, session_id: str, expires: float, payload: bytes, *, signed_in: bool = False
    ) -> None:
        """Keeps a new session until `expires` (Unix seconds)."""
        digest, until = _digest(session_id), int(expires) + 1
        row = {"digest": digest, "sealed": seal(self.sealer, payload, _bound(digest, until)),
               "expires": until, "created": int(time.time() * 1000),
               "signed_in": int(signed_in)}  # fmt: skip
        with self.engine.begin() as connection:
            connection.execute(insert(web_sessions).values(row))
        if self._due():
            self.prune()

    def delete(self, session_id: str) -> None:
        """Ends a session, for every node at once."""
        if not session_id or len(session_id) > MAX_ID_CHARS:
            return
        with self.engine.begin() as connection:
            connection.execute(
                delete(web_sessions).where(web_sessions.c.digest == _digest(session_id))
            )

    def _due(self) -> bool:
        with self._lock:
            self._writes += 1
            if self._writes < PRUNE_EVERY and time.monotonic() - self._pruned_at < PRUNE_SECONDS:
                return False
            self._writes, self._pruned_at = 0, time.monotonic()
            return True

    def prune(self, now: float | None = None) -> int:
        """Deletes the expired rows, then beyond capacity the oldest, anonymous ones first;
        returns how many."""
        moment = int(time.time() if now is None else now)
        with self.engine.begin() as connection:
            done = connection.execute(delete(web_sessions).where(web_sessions.c.expires <= moment))
            removed = int(done.rowcount)
            count = connection.execute(select(func.count()).select_from(web_sessions)).scalar_one()
            if count > self.capacity:
                oldest = (
                    select(web_sessions.c.digest)
                    .order_by(web_sessions.c.signed_in, web_sessions.c.created)
                    .limit(count - self.capacity)
                )
                done = connection.execute(
                    delete(web_sessions).where(web_sessions.c.digest.in_(oldest))
                )
                removed += int(done.rowcount)
        return removed
