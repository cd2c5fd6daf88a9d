"""The dashboard (tableau de bord) of a signed-in declarant: its deposits page by page, each with
its state, its anomalies (the BAN's, in French), each organism's delivery and CRMs and its trace
id; a DSN upload whose refusal is told next to the form; the notifications of its companies with
an acknowledge button; for administrators their accounts and habilitations, granted and revoked
from the page. Each block is the answer of a gRPC call made with the session's chain and a proof
by the session's key; a block the chain gives no right to is not shown. Everything the node says
in codes is worded here, in French."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp
from interops.dsn.v1 import dsn_pb2
from interops.habilitation.v1 import habilitation_pb2
from interops.notify.v1 import notify_pb2
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clients.errors import InteropsError
from registry.habilitation.declarative_services import SERVICES
from registry.kernel.rights import DSN_DEPOSIT, HABILITATION_MANAGE, NOTIFY_READ
from server.rpc.errors import http_status_of
from server.web.node_calls import NodeCalls
from server.web.rendering import REASONS, Pages, reason_fr, says
from server.web.sessions import Session
from server.web.sign_in_pages import SignInPages

DEPOSITS = "/interops.dsn.v1.DepositService"
NOTIFY = "/interops.notify.v1.NotificationService"
HABILITATIONS = "/interops.habilitation.v1.HabilitationService"
UPLOAD_CHUNK = 1024 * 1024
DEPOSITS_PAGE = 10
RETURNS_PAGE = 20
# The anomalies a deposit page lists at most (the report says how many more there are).
ANOMALIES_SHOWN = 500
PARIS = ZoneInfo("Europe/Paris")

STATES = {
    dsn_pb2.DEPOSIT_STATE_RECEIVED: ("Reçue, en cours de contrôle", "pending"),
    dsn_pb2.DEPOSIT_STATE_VALIDATED: ("Conforme, en cours de transmission", "pending"),
    dsn_pb2.DEPOSIT_STATE_ROUTED: ("Transmise aux organismes", "ok"),
    dsn_pb2.DEPOSIT_STATE_REJECTED: ("Rejetée", "bad"),
}
DELIVERY_STATES = {
    dsn_pb2.DELIVERY_STATE_PENDING: ("En attente de l'organisme", "pending"),
    dsn_pb2.DELIVERY_STATE_SENT: ("Remise à l'organisme", "pending"),
    dsn_pb2.DELIVERY_STATE_ACKNOWLEDGED: ("Reçue par l'organisme (accusé signé)", "ok"),
}
RETURN_KINDS = {
    dsn_pb2.RETURN_KIND_CCO: "CCO (certificat de conformité)",
    dsn_pb2.RETURN_KIND_BAN: "BAN (bilan d'anomalies)",
    dsn_pb2.RETURN_KIND_CRM: "CRM (compte rendu métier)",
}
RETURN_STATUSES = {
    dsn_pb2.RETURN_STATUS_ACCEPTED: ("Acceptée", "ok"),
    dsn_pb2.RETURN_STATUS_ACCEPTED_WITH_CORRECTIONS: ("Acceptée avec corrections", "ok"),
    dsn_pb2.RETURN_STATUS_PARTLY_TAKEN: ("Prise en compte en partie", "pending"),
    dsn_pb2.RETURN_STATUS_REJECTED: ("Rejetée", "bad"),
}
CONFIRMATIONS = {
    "granted": "L'habilitation est accordée.",
    "held": "Ce compte avait déjà cette habilitation.",
    "revoked": "L'habilitation est retirée.",
    "absent": "Ce compte n'avait pas cette habilitation.",
}


def period_fr(month: str) -> str:
    """A declared month (DDMMYYYY) as MM/YYYY ("—" when there is none)."""
    if len(month) == 8 and month.isdigit():
        return f"{month[2:4]}/{month[4:]}"
    return month or "—"


def state_name(deposit: dsn_pb2.Deposit) -> str:
    """The state as the dashboard words it."""
    return STATES.get(deposit.state, ("État inconnu", "pending"))[0]


@dataclass(frozen=True)
class Anomaly:
    """One anomaly of a validation report, as the page shows it."""

    line: int
    rubric: str
    rule: str
    blocking: bool
    message_fr: str
    message: str


@dataclass(frozen=True)
class Report:
    """The anomalies of a deposit's CCO or BAN, and how many it did not list."""

    anomalies: tuple[Anomaly, ...]
    not_listed: int


def report_of(answer: dsn_pb2.Return) -> Report | None:
    """The validation report a CCO or BAN carries as JSON (registry/dsn/validation.py
    `Report.as_dict`); None for another return or a content that is not one."""
    if answer.kind not in (dsn_pb2.RETURN_KIND_CCO, dsn_pb2.RETURN_KIND_BAN):
        return None
    try:
        document = json.loads(answer.content)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("anomalies"), list):
        return None
    found = [a for a in document["anomalies"] if isinstance(a, dict)]
    anomalies = tuple(
        Anomaly(
            line=int(a.get("line") or 0), rubric=str(a.get("rubric") or ""),
            rule=str(a.get("rule") or ""), blocking=bool(a.get("blocking")),
            message_fr=str(a.get("message_fr") or ""), message=str(a.get("message") or ""),
        )
        for a in found[:ANOMALIES_SHOWN]
    )  # fmt: skip
    listed = document.get("anomalies_not_listed")
    not_listed = (listed if isinstance(listed, int) else 0) + max(0, len(found) - ANOMALIES_SHOWN)
    return Report(anomalies, not_listed)


@dataclass(frozen=True)
class Organism:
    """One organism a deposit was routed to: its delivery and the CRMs it sent back."""

    code: str
    state: tuple[str, str]
    crms: tuple[dsn_pb2.Return, ...]


@dataclass(frozen=True)
class DepositView:
    """A deposit with what its returns say: its report, each organism's delivery and CRMs."""

    deposit: dsn_pb2.Deposit
    report: Report | None
    organisms: tuple[Organism, ...]
    returns: tuple[dsn_pb2.Return, ...]

    @property
    def final(self) -> bool:
        """Rejected, or routed with every delivery acknowledged: nothing more will change."""
        deposit = self.deposit
        if deposit.state == dsn_pb2.DEPOSIT_STATE_REJECTED:
            return True
        return deposit.state == dsn_pb2.DEPOSIT_STATE_ROUTED and all(
            d.state == dsn_pb2.DELIVERY_STATE_ACKNOWLEDGED for d in deposit.deliveries
        )


def deposit_view(deposit: dsn_pb2.Deposit, returns: list[dsn_pb2.Return]) -> DepositView:
    """The deposit with its returns read."""
    crms: dict[str, list[dsn_pb2.Return]] = {}
    for answer in returns:
        if answer.kind == dsn_pb2.RETURN_KIND_CRM:
            crms.setdefault(answer.organism, []).append(answer)
    report = next((r for r in map(report_of, returns) if r is not None), None)
    organisms = tuple(
        Organism(d.organism, DELIVERY_STATES.get(d.state, ("État inconnu", "pending")),
                 tuple(crms.get(d.organism, ())))
        for d in sorted(deposit.deliveries, key=lambda d: d.organism)
    )  # fmt: skip
    return DepositView(deposit, report, organisms, tuple(returns))


@dataclass(frozen=True)
class Pager:
    """A list's place in its pages, carried in the query string: `name` holds the page token,
    `name_back` the tokens of the pages before it (so that "Précédents" goes back)."""

    name: str
    token: str
    back: tuple[str, ...]

    @classmethod
    def of(cls, request: Request, name: str) -> Pager:
        """The pager of the list `name` in the request (page tokens are [A-Za-z0-9_-])."""
        token = request.query_params.get(name, "")
        back = tuple(t for t in request.query_params.get(f"{name}_back", "").split(".") if t)
        return cls(name, token, back[-50:])

    def _url(self, request: Request, token: str, back: tuple[str, ...]) -> str:
        kept = {k: v for k, v in request.query_params.items()
                if k not in (self.name, f"{self.name}_back", "ok")}  # fmt: skip
        if token:
            kept[self.name] = token
        if back:
            kept[f"{self.name}_back"] = ".".join(back)
        query = urlencode(kept)
        return f"{request.url.path}?{query}" if query else request.url.path

    def older(self, request: Request, next_token: str) -> str:
        """The URL of the next page ("" on the last)."""
        if not next_token:
            return ""
        return self._url(request, next_token, (*self.back, self.token or "-"))

    def newer(self, request: Request) -> str:
        """The URL of the page before ("" on the first)."""
        if not self.token:
            return ""
        previous = self.back[-1] if self.back else ""
        return self._url(request, "" if previous == "-" else previous, self.back[:-1])


class DashboardPages:
    """The signed-in pages."""

    def __init__(
        self, node: NodeCalls, pages: Pages, sign_in: SignInPages, max_upload_bytes: int
    ) -> None:
        self.node = node
        self.pages = pages
        self.sign_in = sign_in
        self.max_upload_bytes = max_upload_bytes

    async def dashboard(self, request: Request) -> Response:
        """GET /dashboard."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        return await self._dashboard(request, session)

    async def _dashboard(
        self, request: Request, session: Session, status: int = 200, **errors: str
    ) -> Response:
        """The dashboard, with an error told in place (`upload_error`, `admin_error`; with
        `refused_deposit`, the id of the deposit an ARE refused, whose page the error links)."""
        try:
            values = await self._blocks(request, session)
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        confirmed = CONFIRMATIONS.get(request.query_params.get("ok", ""), "")
        return self.pages.render(
            request, "dashboard.html", session, status=status, wording=WORDING,
            partners=list((await self.sign_in.partners()).values()), confirmed=confirmed,
            upload_error=errors.get("upload_error", ""),
            refused_deposit=errors.get("refused_deposit", ""),
            admin_error=errors.get("admin_error", ""), **values,
        )  # fmt: skip

    async def _blocks(self, request: Request, session: Session) -> dict[str, Any]:
        values: dict[str, Any] = {"deposits": None, "returns": None, "notifications": None,
                                  "admin": None}  # fmt: skip
        if session.holds(DSN_DEPOSIT):
            values.update(await self._deposit_blocks(request, session))
        if session.companies(NOTIFY_READ):
            found: list[notify_pb2.Notification] = []
            for siren in session.companies(NOTIFY_READ):
                found.extend((await self.node.for_session(
                    session, f"{NOTIFY}/ListNotifications",
                    notify_pb2.ListNotificationsRequest(siren=siren, page_size=20),
                    notify_pb2.ListNotificationsResponse)).notifications)  # fmt: skip
            values["notifications"] = found
        if session.holds(HABILITATION_MANAGE):
            values["admin"] = await self._admin_block(session)
        return values

    async def _deposit_blocks(self, request: Request, session: Session) -> dict[str, Any]:
        """This page of deposits, each with its returns; this page of every return."""
        deposits_pager, returns_pager = Pager.of(request, "depots"), Pager.of(request, "retours")
        listed = await self.node.for_session(
            session, f"{DEPOSITS}/ListDeposits",
            dsn_pb2.ListDepositsRequest(page_size=DEPOSITS_PAGE, page_token=deposits_pager.token),
            dsn_pb2.ListDepositsResponse,
        )  # fmt: skip
        views = await asyncio.gather(*(self._view(session, d) for d in listed.deposits))
        returns = await self.node.for_session(
            session, f"{DEPOSITS}/ListReturns",
            dsn_pb2.ListReturnsRequest(page_size=RETURNS_PAGE, page_token=returns_pager.token),
            dsn_pb2.ListReturnsResponse,
        )  # fmt: skip
        return {
            "deposits": views,
            "deposits_older": deposits_pager.older(request, listed.next_page_token),
            "deposits_newer": deposits_pager.newer(request),
            "returns": list(returns.returns),
            "returns_next": returns_pager.older(request, returns.next_page_token),
            "returns_previous": returns_pager.newer(request),
        }

    async def _view(self, session: Session, deposit: dsn_pb2.Deposit) -> DepositView:
        """A deposit with its returns (a deposit has a handful: its CCO or BAN, its CRMs)."""
        returns: list[dsn_pb2.Return] = []
        token = ""
        while True:
            page = await self.node.for_session(
                session, f"{DEPOSITS}/ListReturns",
                dsn_pb2.ListReturnsRequest(deposit_id=deposit.id, page_size=100, page_token=token),
                dsn_pb2.ListReturnsResponse,
            )  # fmt: skip
            returns.extend(page.returns)
            token = page.next_page_token
            if not token or len(returns) >= 1000:
                return deposit_view(deposit, returns)

    async def _admin_block(self, session: Session) -> dict[str, Any]:
        """The company's accounts, their habilitations, and what a grant may name (the
        establishments and services of the company's portfolios)."""
        accounts = (await self.node.for_session(
            session, f"{HABILITATIONS}/ListAccounts",
            habilitation_pb2.ListAccountsRequest(page_size=1000),
            habilitation_pb2.ListAccountsResponse)).accounts  # fmt: skip
        habilitations = (await self.node.for_session(
            session, f"{HABILITATIONS}/ListHabilitations",
            habilitation_pb2.ListHabilitationsRequest(page_size=1000),
            habilitation_pb2.ListHabilitationsResponse)).habilitations  # fmt: skip
        portfolios = (await self.node.for_session(
            session, f"{HABILITATIONS}/ListPortfolios",
            habilitation_pb2.ListPortfoliosRequest(page_size=100),
            habilitation_pb2.ListPortfoliosResponse)).portfolios  # fmt: skip
        own = session.subject.removeprefix("declarant:")
        names = {a.id: _account_name(a, own == str(a.id), session.name) for a in accounts}
        return {
            "accounts": list(accounts), "names": names, "habilitations": list(habilitations),
            "grantable": [a for a in accounts
                          if a.status == habilitation_pb2.ACCOUNT_STATUS_ACTIVE],
            "sirets": sorted({s for p in portfolios for s in p.sirets}),
            "services": sorted({s for p in portfolios for s in p.services} or SERVICES),
        }  # fmt: skip

    async def deposit(self, request: Request) -> Response:
        """GET /deposits/{id}: a deposit, its anomalies, its deliveries and their CRMs (reloads
        until nothing more will change)."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        try:
            deposit = (await self.node.for_session(
                session, f"{DEPOSITS}/GetDeposit",
                dsn_pb2.GetDepositRequest(id=request.path_params["deposit_id"]),
                dsn_pb2.GetDepositResponse)).deposit  # fmt: skip
            view = await self._view(session, deposit)
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        return self.pages.render(request, "deposit.html", session, view=view, deposit=deposit,
                                 wording=WORDING)  # fmt: skip

    async def upload(self, request: Request) -> Response:
        """POST /deposits: a DSN file from the page, deposited through DepositService; a
        refusal is told next to the form."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        length = int(request.headers.get("content-length", "0") or 0)
        if length > self.max_upload_bytes:
            return await self._dashboard(request, session, 413, upload_error=(
                f"Le fichier est trop grand : au plus {self.max_upload_bytes // 2**20} Mio par "
                "la page ; au-delà, déposez par l'API."))  # fmt: skip
        async with request.form(max_part_size=self.max_upload_bytes) as form:
            if not session.csrf_ok(form.get("csrf")):
                return self.pages.forbidden_form(request)
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                return await self._dashboard(
                    request, session, 400, upload_error="Choisissez un fichier DSN à déposer."
                )
            try:
                submit = f"{DEPOSITS}/SubmitDeposit"
                answer = await self.node.client_stream(
                    submit, _deposit_requests(upload), dsn_pb2.SubmitDepositResponse,
                    session.token, session.proof(submit),
                )  # fmt: skip
            except InteropsError as error:
                told = REASONS.get(error.reason) or says(error)
                status = 500 if error.code.name == "INTERNAL" else http_status_of(error.code)
                return await self._dashboard(request, session, status, upload_error=told)
        deposit = answer.deposit
        if deposit.receipt == dsn_pb2.RECEIPT_ARE:  # refused as a whole, at once
            told = f"Fichier « {deposit.file_name} » refusé : {reason_fr(deposit.rejection_code)}"
            return await self._dashboard(request, session, 422, refused_deposit=deposit.id,
                                         upload_error=told)  # fmt: skip
        return RedirectResponse(f"/deposits/{deposit.id}", status_code=303)

    async def acknowledge(self, request: Request) -> Response:
        """POST /notifications/{id}/ack: read while signed in (an authenticated
        acknowledgement)."""
        posted = await self.pages.signed_in_form(request)
        if isinstance(posted, Response):
            return posted
        session, _ = posted
        try:
            await self.node.for_session(session, f"{NOTIFY}/ReadNotification",
                             notify_pb2.ReadNotificationRequest(
                                 id=request.path_params["notification_id"]),
                             notify_pb2.ReadNotificationResponse)  # fmt: skip
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        return RedirectResponse("/dashboard#notifications", status_code=303)

    async def grant(self, request: Request) -> Response:
        """POST /habilitations/grant: an administrator grants a habilitation."""
        return await self._habilitation(request, "GrantHabilitation", ("granted", "held"))

    async def revoke(self, request: Request) -> Response:
        """POST /habilitations/revoke: an administrator revokes a habilitation."""
        return await self._habilitation(request, "RevokeHabilitation", ("revoked", "absent"))

    async def _habilitation(
        self, request: Request, method: str, outcomes: tuple[str, str]
    ) -> Response:
        """Grant or revoke through HabilitationService, then back to the dashboard with a
        confirmation; a refusal is told in place."""
        posted = await self.pages.signed_in_form(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        account = str(form.get("account_id", ""))
        if not account.isdecimal() or not 0 < int(account) < 2**31:
            return await self._dashboard(request, session, 400,
                                         admin_error="Choisissez un compte.")  # fmt: skip
        habilitation = habilitation_pb2.Habilitation(
            account_id=int(account), siret=str(form.get("siret", ""))[:14],
            service=str(form.get("service", ""))[:32],
        )  # fmt: skip
        response = getattr(habilitation_pb2, f"{method}Response")
        try:
            answer = await self.node.for_session(
                session, f"{HABILITATIONS}/{method}",
                getattr(habilitation_pb2, f"{method}Request")(habilitation=habilitation),
                response,
            )  # fmt: skip
        except InteropsError as error:
            told = REASONS.get(error.reason) or says(error)
            return await self._dashboard(request, session, 400, admin_error=told)
        done = outcomes[0] if answer.changed else outcomes[1]
        return RedirectResponse(f"/dashboard?ok={done}#administration", status_code=303)


def when_fr(moment: Timestamp) -> str:
    """A timestamp as a date and time in Paris ("—" when unset)."""
    if not moment.seconds:
        return "—"
    return moment.ToDatetime(tzinfo=datetime.UTC).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


# What the templates word, in one place.
WORDING: dict[str, Any] = {
    "state": lambda d: STATES.get(d.state, ("État inconnu", "pending")),
    "period": period_fr,
    "reason": reason_fr,
    "kind": lambda r: RETURN_KINDS.get(r.kind, "Retour"),
    "status": lambda r: RETURN_STATUSES.get(r.status, ("Statut inconnu", "pending")),
    "service": lambda code: SERVICES[code].label if code in SERVICES else code,
    "role": lambda a: {habilitation_pb2.ROLE_ADMINISTRATOR: "Administrateur"}.get(
        a.role, "Déclarant"
    ),
    "account_status": lambda a: {
        habilitation_pb2.ACCOUNT_STATUS_ACTIVE: "Actif",
        habilitation_pb2.ACCOUNT_STATUS_CANDIDATE: "Candidat (à valider)",
        habilitation_pb2.ACCOUNT_STATUS_STRUCK_OFF: "Radié",
    }.get(a.status, "Inconnu"),
    "when": when_fr,
}


async def _deposit_requests(upload: UploadFile) -> AsyncIterator[dsn_pb2.SubmitDepositRequest]:
    name = (upload.filename or "depot.dsn")[:255]
    yield dsn_pb2.SubmitDepositRequest(header=dsn_pb2.SubmitDepositRequest.Header(file_name=name))
    while chunk := await upload.read(UPLOAD_CHUNK):
        yield dsn_pb2.SubmitDepositRequest(chunk=chunk)


def _account_name(account: habilitation_pb2.Account, own: bool, own_name: str) -> str:
    """How the administrator's page names an account: its names (kept sealed by the node), or
    the signed-in person's own, else its number."""
    name = f"{account.first_name} {account.last_name}".strip() or (own_name if own else "")
    if not name:
        return f"Compte n° {account.id}"
    return f"{name} (vous)" if own else name
