"""Browser sessions of the web adapter, kept in the adapter's memory: the cookie holds only a
random id; the session holds the signed-in declarant's portal chain, the session's own Ed25519
key that the chain names as its holder (made at sign-in, in memory only: never in the cookie,
never logged, never handed out) and the form token (CSRF) every form must send back. A sign-in
starts a new session (its id changes). Every call made for the session carries a proof by its
key: the chain alone is of no use to anyone."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from token_suite.chain import Signer, sign_proof
from token_suite.wire import service_of

COOKIE = "interops_session"
# A signed-in session ends with its chain (at most an hour); an anonymous one after this.
ANONYMOUS_SECONDS = 30 * 60


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


class Sessions:
    """At most `capacity` sessions, the oldest dropped first."""

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
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                          time.time() + seconds)  # fmt: skip
        self._sessions[session.id] = session
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)
        return session

    def end(self, session: Session) -> None:
        """Forgets a session (sign-out), and its key with it."""
        self._sessions.pop(session.id, None)
        session.signer = None

    @staticmethod
    def set_cookie(request: Request, response: Response, session: Session) -> None:
        """Gives the browser the session's id: HttpOnly, SameSite=Lax, Secure over TLS."""
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https",
                            max_age=max(1, int(session.expires - time.time())))  # fmt: skip
