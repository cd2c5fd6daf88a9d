"""Browser sessions of the web adapter: the cookie holds only a random id; the session holds the
signed-in declarant's portal chain, the session's own Ed25519 key that the chain names as its
holder (made at sign-in: never in the cookie, never logged, never handed out) and the form token
(CSRF) every form must send back. A sign-in starts a new session (its id changes). Every call
made for the session carries a proof by its key: the chain alone is of no use to anyone.

An adapter run alone keeps its sessions in its memory (MemorySessions). Inside a node (`interops
serve`), it keeps them in the database the node shares with its peers (SharedSessions over the
node's SessionRows, registry/trust/web_session_store.py, which seals them at rest), so that a
browser a round-robin sends to another node stays signed in there, and a sign-out on one node
ends the session on all of them at once: nothing of a shared session outlives its request here.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import secrets
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from token_suite.chain import Signer, sign_proof
from token_suite.wire import service_of

COOKIE = "interops_session"
# A signed-in session ends with its chain (at most an hour); an anonymous one after this.
ANONYMOUS_SECONDS = 30 * 60
# Where SharedSessions puts, in a request's state, the session read for it and those to write.
_READ = "interops_session"
_TO_WRITE = "interops_sessions_to_write"


@dataclass
class Session:
    """One browser's session."""

    id: str
    csrf: str
    expires: float
    token: bytes = b""
    # The key the chain's root names as holder; repr=False: a session is never printed with it.
    signer: Signer | None = field(default=None, repr=False)
    subject: str = ""
    # The person's first and last names as they signed in (personal data: never logged).
    name: str = field(default="", repr=False)
    siret: str = ""
    # Right -> the SIRENs and SIRETs of its perimeter (empty tuple with everything: "*").
    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        """True once a declarant signed in (and its chain has not expired)."""
        return bool(self.token) and self.expires > time.time()

    def proof(self, method: str) -> bytes:
        """A proof by the session's key for one call of `method` ("/pkg.Service/Method") with
        the session's chain."""
        if self.signer is None:
            raise ValueError("a session proves nothing before its sign-in")
        return sign_proof(self.signer, method, service_of(method), self.token)

    def holds(self, right: str) -> bool:
        """True when the session's chain carries this right."""
        return right in self.grants

    def companies(self, right: str) -> list[str]:
        """The SIRENs a right covers as a whole."""
        return sorted(s for s in self.grants.get(right, ()) if len(s) == 9)

    def csrf_ok(self, sent: object) -> bool:
        """True when a form sent back this session's form token."""
        return isinstance(sent, str) and hmac.compare_digest(sent, self.csrf)


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def payload_of(session: Session) -> bytes:
    """The session (but its id) as bytes, key included: only for a store that seals them."""
    signer = session.signer
    holder = None
    if signer is not None:
        holder = [signer.organism, signer.key_id, _text(signer.key.private_bytes_raw())]
    return json.dumps({
        "csrf": session.csrf, "expires": session.expires, "token": _text(session.token),
        "holder": holder, "subject": session.subject, "name": session.name,
        "siret": session.siret, "grants": {right: list(s) for right, s in session.grants.items()},
    }).encode()  # fmt: skip


def session_of(session_id: str, payload: bytes) -> Session:
    """The session `payload_of` wrote."""
    fields: dict[str, Any] = json.loads(payload)
    holder = fields["holder"]
    signer = None
    if holder is not None:
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(holder[2]))
        signer = Signer(holder[0], holder[1], key)
    return Session(
        session_id, fields["csrf"], fields["expires"], base64.b64decode(fields["token"]), signer,
        fields["subject"], fields["name"], fields["siret"],
        {right: tuple(s) for right, s in fields["grants"].items()},
    )  # fmt: skip


class Sessions(ABC):
    """Where the adapter keeps its browsers' sessions."""

    @abstractmethod
    def of(self, request: Request) -> Session | None:
        """The request's live session, or None."""

    @abstractmethod
    def new(self, seconds: float = ANONYMOUS_SECONDS) -> Session:
        """A new session with fresh id and form token (kept once its cookie is set)."""

    @abstractmethod
    async def end(self, session: Session) -> None:
        """Forgets a session (sign-out, or the anonymous one a sign-in replaces), and its key
        with it."""

    def set_cookie(self, request: Request, response: Response, session: Session) -> None:
        """Gives the browser the session's id: HttpOnly, SameSite=Lax, Secure over TLS."""
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https",
                            max_age=max(1, int(session.expires - time.time())))  # fmt: skip


def _fresh(seconds: float) -> Session:
    return Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time() + seconds)


class MemorySessions(Sessions):
    """At most `capacity` sessions in this process, the oldest dropped first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def of(self, request: Request) -> Session | None:
        """The request's live session, or None."""
        session = self._sessions.get(request.cookies.get(COOKIE, ""))
        if session is None or session.expires <= time.time():
            return None
        return session

    def new(self, seconds: float = ANONYMOUS_SECONDS) -> Session:
        """A new session with fresh id and form token."""
        session = _fresh(seconds)
        self._sessions[session.id] = session
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)
        return session

    async def end(self, session: Session) -> None:
        """Forgets a session, and its key with it."""
        self._sessions.pop(session.id, None)
        session.signer = None


class SessionRows(Protocol):
    """Where shared sessions are kept: payloads by session id, sealed at rest by the store
    (registry/trust/web_session_store.py). Blocking calls: run in a thread."""

    def read(self, session_id: str, now: float) -> bytes | None:
        """The payload of a live session, or None."""

    def write(
        self, session_id: str, expires: float, payload: bytes, *, signed_in: bool = False
    ) -> None:
        """Keeps a new session until `expires`; anonymous ones are dropped first when full."""

    def delete(self, session_id: str) -> None:
        """Ends a session for every node."""


class SharedSessions(Sessions):
    """Sessions in rows every node's adapter reads. SessionLoading reads the request's session
    before the page runs and writes the new one before the response starts, so pages keep
    their plain calls; nothing is kept here between requests."""

    def __init__(self, rows: SessionRows) -> None:
        self.rows = rows

    def of(self, request: Request) -> Session | None:
        """The session read for this request, while live and not ended."""
        session: Session | None = request.scope.get("state", {}).get(_READ)
        if session is None or session.expires <= time.time():
            return None
        return session

    def new(self, seconds: float = ANONYMOUS_SECONDS) -> Session:
        """A new session, written when its cookie is set."""
        return _fresh(seconds)

    def set_cookie(self, request: Request, response: Response, session: Session) -> None:
        """Gives the browser the session's id, and has the session written before the response
        starts (a browser's next request may reach another node)."""
        request.scope.setdefault("state", {}).setdefault(_TO_WRITE, {})[session.id] = session
        super().set_cookie(request, response, session)

    async def end(self, session: Session) -> None:
        """Deletes the session's row (every node refuses its cookie from now) and forgets it."""
        session.signer = None
        session.expires = 0.0
        await asyncio.to_thread(self.rows.delete, session.id)

    async def read(self, session_id: str) -> Session | None:
        """The live session of this id, from the rows."""
        if not session_id:
            return None
        payload = await asyncio.to_thread(self.rows.read, session_id, time.time())
        return None if payload is None else session_of(session_id, payload)

    async def write(self, sessions: Iterable[Session]) -> None:
        """Writes new sessions (those ended meanwhile are not)."""
        live = [(s.id, s.expires, payload_of(s), s.signed_in) for s in sessions if s.expires > 0]
        if live:
            await asyncio.to_thread(self._write_all, live)

    def _write_all(self, rows: list[tuple[str, float, bytes, bool]]) -> None:
        for session_id, expires, payload, signed_in in rows:
            self.rows.write(session_id, expires, payload, signed_in=signed_in)


class SessionLoading:
    """The ASGI middleware of SharedSessions: reads the session of a request's cookie into its
    state (but for the paths in `skip`: static files), and writes the sessions a page gave a
    cookie to before the response starts."""

    def __init__(self, app: ASGIApp, sessions: SharedSessions, skip: tuple[str, ...]) -> None:
        self.app = app
        self.sessions = sessions
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[_READ] = await self.sessions.read(HTTPConnection(scope).cookies.get(COOKIE, ""))

        async def writing_first(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self.sessions.write(state.pop(_TO_WRITE, {}).values())
            await send(message)

        await self.app(scope, receive, writing_first)
