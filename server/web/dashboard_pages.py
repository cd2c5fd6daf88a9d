"""The dashboard (tableau de bord) of a signed-in declarant: its deposits and their returns, a
DSN upload, the notifications of its companies with an acknowledge button, for administrators
their accounts and habilitations. Each block is the answer of a gRPC call
made with the session's chain and a proof by the session's key; a block the chain gives no right
to is not shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from interops.dsn.v1 import dsn_pb2
from interops.habilitation.v1 import habilitation_pb2
from interops.notify.v1 import notify_pb2
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clients.errors import InteropsError
from registry.kernel.rights import DSN_DEPOSIT, HABILITATION_MANAGE, NOTIFY_READ
from server.web.node_calls import NodeCalls
from server.web.rendering import Pages
from server.web.sessions import Session
from server.web.sign_in_pages import SignInPages

DEPOSITS = "/interops.dsn.v1.DepositService"
NOTIFY = "/interops.notify.v1.NotificationService"
HABILITATIONS = "/interops.habilitation.v1.HabilitationService"
UPLOAD_CHUNK = 1024 * 1024
FINAL_STATES = (dsn_pb2.DEPOSIT_STATE_REJECTED, dsn_pb2.DEPOSIT_STATE_ROUTED)


def state_name(deposit: dsn_pb2.Deposit) -> str:
    """The state as the dashboard words it (received, processed, sent, rejected)."""
    return {
        dsn_pb2.DEPOSIT_STATE_RECEIVED: "Reçue",
        dsn_pb2.DEPOSIT_STATE_VALIDATED: "Traitée (conforme)",
        dsn_pb2.DEPOSIT_STATE_ROUTED: "Transmise aux organismes",
        dsn_pb2.DEPOSIT_STATE_REJECTED: "Rejetée",
    }.get(deposit.state, "Inconnu")


class DashboardPages:
    """The signed-in pages."""

    def __init__(
        self, node: NodeCalls, pages: Pages, sign_in: SignInPages, max_upload_bytes: int
    ) -> None:
        self.node = node
        self.pages = pages
        self.sign_in = sign_in
        self.max_upload_bytes = max_upload_bytes

    async def _call(self, session: Session, method: str, request: Any, response: Any) -> Any:
        return await self.node.unary(method, request, response, session.token,
                                     session.proof(method))  # fmt: skip

    async def dashboard(self, request: Request) -> Response:
        """GET /dashboard."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        try:
            values = await self._blocks(session)
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        return self.pages.render(request, "dashboard.html", session, state_name=state_name,
                                 dsn=dsn_pb2,
                                 partners=list((await self.sign_in.partners()).values()),
                                 **values)  # fmt: skip

    async def _blocks(self, session: Session) -> dict[str, Any]:
        values: dict[str, Any] = {"deposits": None, "returns": None, "notifications": None,
                                  "accounts": None, "habilitations": None}  # fmt: skip
        if session.holds(DSN_DEPOSIT):
            values["deposits"] = (await self._call(
                session, f"{DEPOSITS}/ListDeposits", dsn_pb2.ListDepositsRequest(page_size=20),
                dsn_pb2.ListDepositsResponse)).deposits  # fmt: skip
            values["returns"] = (await self._call(
                session, f"{DEPOSITS}/ListReturns", dsn_pb2.ListReturnsRequest(page_size=20),
                dsn_pb2.ListReturnsResponse)).returns  # fmt: skip
        if session.companies(NOTIFY_READ):
            found: list[notify_pb2.Notification] = []
            for siren in session.companies(NOTIFY_READ):
                found.extend((await self._call(
                    session, f"{NOTIFY}/ListNotifications",
                    notify_pb2.ListNotificationsRequest(siren=siren, page_size=20),
                    notify_pb2.ListNotificationsResponse)).notifications)  # fmt: skip
            values["notifications"] = found
        if session.holds(HABILITATION_MANAGE):
            values["accounts"] = (await self._call(
                session, f"{HABILITATIONS}/ListAccounts",
                habilitation_pb2.ListAccountsRequest(page_size=100),
                habilitation_pb2.ListAccountsResponse)).accounts  # fmt: skip
            values["habilitations"] = (await self._call(
                session, f"{HABILITATIONS}/ListHabilitations",
                habilitation_pb2.ListHabilitationsRequest(page_size=200),
                habilitation_pb2.ListHabilitationsResponse)).habilitations  # fmt: skip
        return values

    async def deposit(self, request: Request) -> Response:
        """GET /deposits/{id}: a deposit, its state and its returns (reloads until final)."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        deposit_id = request.path_params["deposit_id"]
        try:
            deposit = (await self._call(session, f"{DEPOSITS}/GetDeposit",
                                        dsn_pb2.GetDepositRequest(id=deposit_id),
                                        dsn_pb2.GetDepositResponse)).deposit  # fmt: skip
            returns = (await self._call(session, f"{DEPOSITS}/ListReturns",
                                        dsn_pb2.ListReturnsRequest(deposit_id=deposit_id),
                                        dsn_pb2.ListReturnsResponse)).returns  # fmt: skip
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        return self.pages.render(request, "deposit.html", session, deposit=deposit,
                                 returns=returns, state=state_name(deposit),
                                 final=deposit.state in FINAL_STATES, dsn=dsn_pb2)  # fmt: skip

    async def upload(self, request: Request) -> Response:
        """POST /deposits: a DSN file from the page, deposited through DepositService."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        length = int(request.headers.get("content-length", "0") or 0)
        if length > self.max_upload_bytes:
            return self.pages.error(request, 413, "Le fichier est trop grand.",
                                    f"Au plus {self.max_upload_bytes // 2**20} Mio par la page ; "
                                    "au-delà, déposez par l'API.")  # fmt: skip
        async with request.form(max_part_size=self.max_upload_bytes) as form:
            if not session.csrf_ok(form.get("csrf")):
                return self.pages.forbidden_form(request)
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                return self.pages.error(request, 400, "Choisissez un fichier DSN à déposer.")
            try:
                submit = f"{DEPOSITS}/SubmitDeposit"
                answer = await self.node.client_stream(
                    submit, _deposit_requests(upload), dsn_pb2.SubmitDepositResponse,
                    session.token, session.proof(submit),
                )  # fmt: skip
            except InteropsError as error:
                return self.pages.call_failed(request, error)
        return RedirectResponse(f"/deposits/{answer.deposit.id}", status_code=303)

    async def acknowledge(self, request: Request) -> Response:
        """POST /notifications/{id}/ack: read while signed in (an authenticated
        acknowledgement)."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        if await self.pages.checked_form(request, session) is None:
            return self.pages.forbidden_form(request)
        try:
            await self._call(session, f"{NOTIFY}/ReadNotification",
                             notify_pb2.ReadNotificationRequest(
                                 id=request.path_params["notification_id"]),
                             notify_pb2.ReadNotificationResponse)  # fmt: skip
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        return RedirectResponse("/dashboard#notifications", status_code=303)


async def _deposit_requests(upload: UploadFile) -> AsyncIterator[dsn_pb2.SubmitDepositRequest]:
    name = (upload.filename or "depot.dsn")[:255]
    yield dsn_pb2.SubmitDepositRequest(header=dsn_pb2.SubmitDepositRequest.Header(file_name=name))
    while chunk := await upload.read(UPLOAD_CHUNK):
        yield dsn_pb2.SubmitDepositRequest(chunk=chunk)
