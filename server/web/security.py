"""What every page of the web adapter gets: security headers (a content security policy with a
nonce per response, no framing), and a limit on sign-in attempts per client address."""

from __future__ import annotations

import secrets
import time
from collections import deque

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response


class SecurityHeaders(BaseHTTPMiddleware):
    """Sets a nonce for the page's own scripts (request.state.nonce) and, on every response,
    CSP (frame-ancestors 'none'; forms post to this site, or to the partner a page names in
    request.state.form_action), nosniff, no referrer, no caching of pages."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request.state.nonce = secrets.token_urlsafe(16)
        request.state.form_action = ""
        response = await call_next(request)
        form_action = " ".join(filter(None, ["'self'", request.state.form_action]))
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{request.state.nonce}'; style-src 'self'; "
            f"img-src 'self' data:; form-action {form_action}; frame-ancestors 'none'; "
            "base-uri 'none'; object-src 'none'"
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        if request.url.scheme == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response


class AttemptLimit:
    """At most `limit` attempts per key (a client address) in any `seconds`."""

    def __init__(self, limit: int = 10, seconds: float = 60.0, keys: int = 100_000) -> None:
        self.limit = limit
        self.seconds = seconds
        self.keys = keys
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Counts an attempt; False when the key made too many lately."""
        now = time.monotonic()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.seconds:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > self.keys:  # forget the quiet ones
            for quiet in [k for k, v in self._seen.items() if not v][: self.keys // 10 or 1]:
                del self._seen[quiet]
        return True

    def retry_after(self, key: str) -> int:
        """Seconds until the key may try again."""
        seen = self._seen.get(key)
        if not seen:
            return 0
        return max(1, int(seen[0] + self.seconds - time.monotonic()) + 1)
