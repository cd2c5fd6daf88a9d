"""The mandates page (mandats de prélèvement SEPA) of a signed-in declarant habilitated for
payment: the mandates of each establishment (or company) of its mandate.manage perimeter, a form
to enter one (the IBAN's key checked as it is typed, in the browser, then by the node), and for
each mandate its PDF to print, and the buttons to acknowledge or revoke it. Every block is the
answer of a MandateService call made with the session's chain; the node's refusals are worded
here in French."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from interops.mandate.v1 import mandate_pb2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clients.errors import InteropsError
from registry.kernel.rights import MANDATE_MANAGE
from server.web.node_calls import NodeCalls
from server.web.rendering import REASONS, Pages, says
from server.web.sessions import Session

MANDATES = "/interops.mandate.v1.MandateService"
STATES = {
    mandate_pb2.MANDATE_STATE_PENDING: ("En attente d'acquittement", "pending"),
    mandate_pb2.MANDATE_STATE_ACKNOWLEDGED: ("Acquitté", "ok"),
    mandate_pb2.MANDATE_STATE_REVOKED: ("Révoqué", "bad"),
}
SCHEMES = {mandate_pb2.SCHEME_CORE: "SEPA CORE", mandate_pb2.SCHEME_B2B: "SEPA B2B"}
# The node's refusals of a mandate, in French (the others: server/web/rendering.REASONS).
REFUSALS = {
    "BAD_IBAN": "L'IBAN n'est pas valide (format ou clé).",
    "UNKNOWN_BANK": "Le code banque de cet IBAN n'est pas au fichier des guichets.",
    "BAD_BIC": "Le BIC n'est pas valide (8 ou 11 caractères).",
    "UNKNOWN_CREDITOR": "Ce créancier n'est pas enregistré.",
    "BAD_SIGNATURE_DATE": "La date de signature doit être passée, et au plus tôt le 1er novembre "
    "2009 (début du prélèvement SEPA).",
    "IBAN_NOT_SEPA": "Cet IBAN n'est pas d'un pays de la zone SEPA.",
    "BIC_COUNTRY_MISMATCH": "Le BIC n'est pas du pays de l'IBAN.",
    "MANDATE_REFERENCE_NOT_DEBTORS": "La référence doit commencer par le SIREN du débiteur "
    "(ou laissez-la vide : elle sera attribuée).",
    "REQUEST_ID_REUSED": "Cette demande a déjà servi pour un autre mandat.",
    "MANDATE_REFERENCE_TAKEN": "Ce créancier a déjà un mandat de cette référence.",
    "MANDATE_NOT_ACKNOWLEDGED": "Ce mandat n'est pas encore acquitté.",
    "MANDATE_REVOKED": "Ce mandat est révoqué.",
    "MANDATE_LAPSED": "Ce mandat est caduc (inutilisé depuis 36 mois) : signez-en un nouveau.",
    "NOT_IN_YOUR_PERIMETER": "Vous n'êtes pas habilité au paiement pour ce débiteur.",
}
_FIELDS = ("debtor", "creditor", "reference", "iban", "bic", "scheme", "signed_on")
CONFIRMATIONS = {
    "created": "Le mandat est enregistré ; imprimez-le, faites-le signer, puis acquittez-le.",
    "acknowledged": "Le mandat est acquitté.",
    "revoked": "Le mandat est révoqué.",
}


def _told(error: InteropsError) -> str:
    return REFUSALS.get(error.reason) or REASONS.get(error.reason) or says(error)


class MandatePages:
    """GET /mandates, POST /mandates, POST /mandates/acknowledge and /mandates/revoke,
    GET /mandates/{creditor}/{reference}.pdf."""

    def __init__(self, node: NodeCalls, pages: Pages) -> None:
        self.node = node
        self.pages = pages

    def _debtors(self, session: Session) -> list[str]:
        return sorted(session.grants.get(MANDATE_MANAGE, ()))

    async def show(self, request: Request) -> Response:
        """GET /mandates."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        return await self._show(request, session)

    async def _show(
        self, request: Request, session: Session, status: int = 200, error: str = "",
        entered: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        if not session.holds(MANDATE_MANAGE):
            return self.pages.error(request, 403, "Vous n'êtes pas habilité au paiement.")
        found: list[mandate_pb2.Mandate] = []
        try:
            for debtor in self._debtors(session):
                found.extend((await self.node.for_session(
                    session, f"{MANDATES}/SearchMandates",
                    mandate_pb2.SearchMandatesRequest(debtor=debtor, page_size=1000),
                    mandate_pb2.SearchMandatesResponse)).mandates)  # fmt: skip
        except InteropsError as failure:
            return self.pages.call_failed(request, failure)
        unique = {(m.creditor, m.reference): m for m in found}
        return self.pages.render(
            request, "mandates.html", session, status=status, error=error,
            mandates=sorted(unique.values(), key=lambda m: (m.debtor, m.creditor, m.reference)),
            debtors=self._debtors(session), entered=entered or {}, states=STATES,
            schemes=SCHEMES, quote=quote,
            confirmed=CONFIRMATIONS.get(request.query_params.get("ok", ""), ""),
        )  # fmt: skip

    async def create(self, request: Request) -> Response:
        """POST /mandates: enters a mandate; a refusal is told next to the form, which keeps
        what was typed but the IBAN."""
        posted = await self.pages.signed_in_form(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        fields = {name: str(form.get(name, ""))[:64] for name in _FIELDS}
        scheme = mandate_pb2.SCHEME_B2B if fields["scheme"] == "B2B" else mandate_pb2.SCHEME_CORE
        kept = {k: v for k, v in fields.items() if k != "iban"}
        request_message = mandate_pb2.CreateMandateRequest(
            debtor=fields["debtor"], creditor=fields["creditor"].upper(),
            reference=fields["reference"], iban=fields["iban"], bic=fields["bic"].upper(),
            scheme=scheme, signed_on=fields["signed_on"],
        )  # fmt: skip
        try:
            await self.node.for_session(session, f"{MANDATES}/CreateMandate", request_message,
                                        mandate_pb2.CreateMandateResponse)  # fmt: skip
        except InteropsError as failure:
            return await self._show(request, session, 400, _told(failure), kept)
        return RedirectResponse("/mandates?ok=created", status_code=303)

    async def acknowledge(self, request: Request) -> Response:
        """POST /mandates/acknowledge."""
        return await self._act(request, "AcknowledgeMandate", "acknowledged")

    async def revoke(self, request: Request) -> Response:
        """POST /mandates/revoke."""
        return await self._act(request, "RevokeMandate", "revoked")

    async def _act(self, request: Request, method: str, done: str) -> Response:
        posted = await self.pages.signed_in_form(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        key = mandate_pb2.MandateKey(creditor=str(form.get("creditor", ""))[:64],
                                     reference=str(form.get("reference", ""))[:35])  # fmt: skip
        message: Any = getattr(mandate_pb2, f"{method}Request")(key=key)
        try:
            await self.node.for_session(session, f"{MANDATES}/{method}", message,
                                        getattr(mandate_pb2, f"{method}Response"))  # fmt: skip
        except InteropsError as failure:
            return await self._show(request, session, 400, _told(failure))
        return RedirectResponse(f"/mandates?ok={done}", status_code=303)

    async def pdf(self, request: Request) -> Response:
        """GET /mandates/{creditor}/{reference}.pdf: the mandate to print and sign."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        key = mandate_pb2.MandateKey(creditor=request.path_params["creditor"][:64],
                                     reference=request.path_params["reference"][:35])  # fmt: skip
        try:
            answer = await self.node.for_session(
                session, f"{MANDATES}/PrintMandate", mandate_pb2.PrintMandateRequest(key=key),
                mandate_pb2.PrintMandateResponse,
            )  # fmt: skip
        except InteropsError as failure:
            return self.pages.call_failed(request, failure)
        name = f"mandat-{key.creditor}-{key.reference}.pdf".replace('"', "").replace("/", "-")
        disposition = f'inline; filename="{quote(name)}"'
        return Response(answer.pdf, media_type="application/pdf",
                        headers={"Content-Disposition": disposition})  # fmt: skip
