"""What every page of the web adapter gets: security headers (a content security policy with a
nonce per response, no framing), and a limit on sign-in attempts per client address."""

from __future__ import annotations

import secrets
import time
from collections import deque

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    """Sets a nonce for the page's own scripts (request.state.nonce) and, on every response,
    CSP (frame-ancestors 'none'; forms post to this site, or to the partner a page names in
    request.state.form_action), nosniff, no referrer, no caching of pages. A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware costs a task and a stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["nonce"] = nonce = secrets.token_urlsafe(16)
        state["form_action"] = ""
        page = not scope["path"].startswith("/static/")
        tls = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                form_action = " ".join(filter(None, ["'self'", state["form_action"]]))
                headers["Content-Security-Policy"] = (
                    f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self'; "
                    f"img-src 'self' data:; form-action {form_action}; "
                    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
                )
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if page:
                    headers["Cache-Control"] = "no-store"
                if tls:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


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
