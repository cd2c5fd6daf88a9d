"""The web adapter's ASGI application, and how `interops serve` runs it beside the gRPC server
(uvicorn, in the node's event loop, on INTEROPS_HTTP_ADDRESS)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import uvicorn
from interops.notify.v1 import notify_pb2
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clients.errors import InteropsError
from server.config import Settings
from server.web.dashboard_pages import DashboardPages
from server.web.mandate_pages import MandatePages
from server.web.node_calls import NodeCalls
from server.web.operator_pages import OperatorPages
from server.web.rendering import Pages
from server.web.rest_gateway import RestGateway, http_refusal
from server.web.security import SecurityHeaders
from server.web.sessions import MemorySessions, SessionLoading, SessionRows, SharedSessions
from server.web.sign_in_pages import SignInPages

log = logging.getLogger("interops.web")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def build_app(
    node_address: str,
    method_rights: Mapping[str, str | None],
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    door_secret: bytes = b"",
    tracer_provider: TracerProvider | None = None,
    *,
    session_rows: SessionRows | None = None,
) -> Starlette:
    """The application, calling the node at `node_address` over gRPC with each HTTP client's
    address under the node's `door_secret` (the node's sign-in limits count that client);
    `method_rights` is the right each RPC needs by path (the node's map, None when public), for
    the OpenAPI document. With a tracer provider, each request is a server span whose trace the
    node's calls continue. With `session_rows` (the node's, shared by every node on its
    database), browser sessions are kept there; else in this process's memory."""
    node = NodeCalls(node_address, tracer_provider=tracer_provider, door_secret=door_secret)
    sessions = MemorySessions() if session_rows is None else SharedSessions(session_rows)
    pages = Pages(sessions)
    sign_in = SignInPages(node, pages, sessions)
    dashboard = DashboardPages(node, pages, sign_in, max_upload_bytes)
    operator = OperatorPages(node, pages)
    mandates = MandatePages(node, pages)
    rest = RestGateway(node, method_rights)

    async def home(request: Request) -> Response:
        session = sessions.of(request)
        target = "/dashboard" if session is not None and session.signed_in else "/signin"
        return RedirectResponse(target, status_code=303)

    async def opened_link(request: Request) -> Response:
        """GET /n/<reference>: an e-mail link, spent once; reading needs a sign-in."""
        try:
            await node.unary("/interops.notify.v1.NotificationService/OpenLink",
                             notify_pb2.OpenLinkRequest(reference=request.path_params["ref"]),
                             notify_pb2.OpenLinkResponse)  # fmt: skip
        except InteropsError as error:
            return pages.call_failed(request, error)
        session, new = pages.session(request)
        return pages.render(request, "opened_link.html", session, new)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if request.url.path.startswith("/v1/"):  # the REST declination answers in JSON
            given = (exc.headers or {}) if isinstance(exc, HTTPException) else {}
            detail = exc.detail if isinstance(exc, HTTPException) else ""
            return http_refusal(request, status, detail, given.get("Allow", "POST"))
        title = "Page introuvable." if status == 404 else "La demande n'a pas abouti."
        return pages.error(request, status, title)

    async def failed(request: Request, exc: Exception) -> Response:
        log.exception("web adapter: %s %s failed", request.method, request.url.path)
        if request.url.path.startswith("/v1/"):  # the REST declination answers in JSON
            return http_refusal(request, 500)
        return pages.error(request, 500, "Une erreur est survenue de notre côté.")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await node.close()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/signin", sign_in.show, methods=["GET"]),
            Route("/signin", sign_in.submit, methods=["POST"]),
            Route("/mag", sign_in.show, methods=["GET"]),
            Route("/signout", sign_in.sign_out, methods=["POST"]),
            Route("/navigate", sign_in.navigate, methods=["POST"]),
            Route("/dashboard", dashboard.dashboard),
            Route("/deposits", dashboard.upload, methods=["POST"]),
            Route("/deposits/{deposit_id}", dashboard.deposit),
            Route("/notifications/{notification_id}/ack", dashboard.acknowledge, methods=["POST"]),
            Route("/habilitations/grant", dashboard.grant, methods=["POST"]),
            Route("/habilitations/revoke", dashboard.revoke, methods=["POST"]),
            Route("/operator", operator.operator),
            Route("/mandates", mandates.show, methods=["GET"]),
            Route("/mandates", mandates.create, methods=["POST"]),
            Route("/mandates/acknowledge", mandates.acknowledge, methods=["POST"]),
            Route("/mandates/revoke", mandates.revoke, methods=["POST"]),
            Route("/mandates/{creditor}/{reference:path}.pdf", mandates.pdf),
            Route("/n/{ref}", opened_link),
            *rest.routes(),
            Mount(
                "/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"
            ),
        ],
        exception_handlers={HTTPException: not_found, Exception: failed},
        lifespan=lifespan,
    )
    app.state.sessions = sessions  # for tests that look at a session from outside
    if isinstance(sessions, SharedSessions):  # innermost: error pages' new sessions are written
        app.add_middleware(SessionLoading, sessions=sessions, skip=("/static/", "/v1/"))
    app.add_middleware(SecurityHeaders)
    if tracer_provider is not None:  # outermost: the span covers the whole request
        app.add_middleware(OpenTelemetryMiddleware, tracer_provider=tracer_provider,
                           excluded_urls="/static/")  # fmt: skip
    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: `interops serve` handles the signals and stops
    both servers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """The adapter served by uvicorn in the node's event loop."""

    def __init__(
        self,
        settings: Settings,
        node_port: int,
        method_rights: Mapping[str, str | None],
        door_secret: bytes = b"",
        tracer_provider: TracerProvider | None = None,
        *,
        session_rows: SessionRows | None = None,
    ) -> None:
        """The adapter of the node at `node_port`, which gave it its `door_secret`
        (server/rpc/client_address.py) and, shared by every node, its `session_rows`."""
        host, _, port = settings.http_address.rpartition(":")
        node_host = settings.grpc_address.rpartition(":")[0]
        if node_host in ("0.0.0.0", "[::]", ""):  # noqa: S104 -- reach a wildcard bind on loopback
            node_host = "127.0.0.1"
        app = build_app(f"{node_host}:{node_port}", method_rights, door_secret=door_secret,
                        tracer_provider=tracer_provider, session_rows=session_rows)  # fmt: skip
        config = uvicorn.Config(
            app, host=host, port=int(port), log_level="warning", access_log=False,
            ssl_certfile=settings.http_tls_cert or None, ssl_keyfile=settings.http_tls_key or None,
            lifespan="on",
            # Requests still running then (a followed stream) are cancelled: a stop ends in time.
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
        )  # fmt: skip
        config.load()
        if config.ssl is not None:  # TLS 1.3 only
            config.ssl.minimum_version = ssl.TLSVersion.TLSv1_3
        self.server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Starts serving; returns the bound port. OSError when the address cannot be had."""
        host, port = self.server.config.host, self.server.config.port
        listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it; without it, Nagle holds each small response back
        # for the client's delayed acknowledgement (40 ms a request, found by the benchmark).
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            listening.bind((host, port))
        except OSError as error:
            listening.close()
            raise OSError(f"the web adapter cannot listen on {host}:{port}: {error}") from None
        listening.listen(128)
        listening.setblocking(False)
        self._task = asyncio.create_task(self.server.serve(sockets=[listening]),
                                         name="web-adapter")  # fmt: skip
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise OSError("the web adapter stopped at start")
            await asyncio.sleep(0.02)
        return int(listening.getsockname()[1])

    async def stop(self) -> None:
        """Stops serving."""
        self.server.should_exit = True
        if self._task is not None:
            await self._task
