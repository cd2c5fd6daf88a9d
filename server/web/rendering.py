"""What every page handler of the web adapter shares: the templates, the session of the request
(created when missing), form checks, and error pages that say what went wrong without internals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from clients.errors import InteropsError
from server.rpc.errors import http_status_of
from server.web.sessions import Session, Sessions

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# What a person is told for each failure of a call (never the internals).
_SAYS = {
    "UNAUTHENTICATED": "Vous devez vous reconnecter.",
    "PERMISSION_DENIED": "Vous n'avez pas le droit de faire cela.",
    "NOT_FOUND": "Ce que vous cherchez n'existe pas, ou pas pour vous.",
    "INVALID_ARGUMENT": "La demande est incorrecte.",
    "FAILED_PRECONDITION": "Ce n'est pas possible dans l'état actuel.",
    "ALREADY_EXISTS": "Cela existe déjà.",
    "RESOURCE_EXHAUSTED": "C'est trop grand, ou trop de tentatives : réessayez plus tard.",
    "UNAVAILABLE": "Le service est momentanément indisponible : réessayez dans un instant.",
}

# The codes a declarant can meet: a deposit's rejection (registry/dsn/scan.py, the pipeline)
# and the refusals of the node's calls the pages make.
REASONS = {
    "NOT_CONFORMANT": "Le fichier comporte des anomalies bloquantes : voyez le bilan "
    "d'anomalies (BAN) ci-dessous, corrigez le fichier et déposez-le à nouveau.",
    "EMPTY_FILE": "Le fichier est vide.",
    "NOT_A_DSN": "Ce fichier n'est pas une DSN au format NEODeS (la version de norme "
    "S10.G00.00.006 manque).",
    "UNSUPPORTED_VERSION": "Cette version de la norme NEODeS n'est pas prise en charge.",
    "AMBIGUOUS_STRUCTURE": "La structure du fichier est ambiguë : ses blocs ne se lisent pas "
    "d'une seule façon.",
    "PERIOD_IN_FUTURE": "Le mois déclaré n'a pas commencé : une DSN déclare un mois entamé.",
    "NO_ESTABLISHMENT": "Le fichier ne déclare aucun établissement (S21.G00.06 / S21.G00.11).",
    "TOO_MANY_ESTABLISHMENTS": "Le fichier déclare trop d'établissements.",
    "NOT_ENTITLED": "Vous n'êtes pas habilité à déclarer pour l'un des établissements du fichier.",
    "EMITTER_NOT_YOURS": "L'émetteur (S10.G00.01) doit être un établissement de votre entreprise.",
    "DECLARED_BY_ANOTHER_FIRM": "Un établissement du fichier est déclaré par un autre cabinet : "
    "seul un mandat de l'administrateur de son entreprise vous permet de le déclarer à nouveau.",
    "DEPOSIT_TOO_LARGE": "Le fichier est trop grand.",
    "DEPOSIT_NOT_FOUND": "Ce dépôt n'existe pas, ou n'est pas le vôtre.",
    "NOT_IN_A_PORTFOLIO": "Cet établissement n'est dans aucun portefeuille de l'entreprise avec "
    "ce service : ajoutez-le d'abord à un portefeuille.",
    "ACCOUNT_INACTIVE": "Ce compte n'est pas actif.",
    "UNKNOWN_SERVICE": "Ce service n'existe pas.",
    "UNKNOWN_SIRET": "Cet établissement n'est pas connu du répertoire.",
    "UNKNOWN_DECLARANT": "Ce compte n'existe pas.",
    "NOT_YOUR_COMPANY": "Cet établissement ou ce compte n'est pas de votre entreprise.",
    "NOT_MANAGED": "Cet établissement n'est pas géré par votre entreprise.",
    "NOT_AN_ADMINISTRATOR": "Seul un administrateur actif de l'entreprise peut faire cela.",
    "MISSING_GRANT": "Votre connexion ne vous donne pas ce droit sur l'entreprise.",
}


def reason_fr(code: str) -> str:
    """A code of the node in a French sentence (an unknown one: the code, and what to do)."""
    if not code:
        return ""
    return REASONS.get(code, f"Refus « {code} » : la demande n'a pas abouti. Si cela persiste, "
                             "donnez ce code au support.")  # fmt: skip


def says(error: InteropsError) -> str:
    """What a person is told for a failed call, in plain French (never the internals)."""
    return _SAYS.get(error.code.name, "La demande a échoué.")


class Pages:
    """Renders pages for the request's session."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def session(self, request: Request) -> tuple[Session, bool]:
        """The request's session, or a new anonymous one (True when new: set its cookie)."""
        found = self.sessions.of(request)
        return (found, False) if found is not None else (self.sessions.new(), True)

    def render(
        self, request: Request, template: str, session: Session, new: bool = False,
        status: int = 200, **values: Any,
    ) -> HTMLResponse:  # fmt: skip
        """A page, with the session (its form token) and the response's script nonce."""
        response = TEMPLATES.TemplateResponse(
            request, template, {"session": session, "nonce": request.state.nonce, **values},
            status_code=status,
        )  # fmt: skip
        if new:
            self.sessions.set_cookie(request, response, session)
        return response

    def error(self, request: Request, status: int, title: str, detail: str = "") -> HTMLResponse:
        """An error page."""
        session, new = self.session(request)
        return self.render(request, "error.html", session, new, status=status, title=title,
                           detail=detail)  # fmt: skip

    def call_failed(self, request: Request, error: InteropsError) -> HTMLResponse:
        """The page for a failed call: what the node said, in plain words."""
        status = http_status_of(error.code)
        if error.code.name == "INTERNAL":
            trace = error.metadata.get("trace_id", "")
            detail = f"Donnez cet identifiant au support : {trace}" if trace else ""
            return self.error(request, 500, "Une erreur est survenue de notre côté.", detail)
        return self.error(request, status, says(error), reason_fr(error.reason))

    async def checked_form(self, request: Request, session: Session) -> FormData | None:
        """The posted form when it carries the session's form token, else None."""
        form = await request.form()
        return form if session.csrf_ok(form.get("csrf")) else None

    def signed_in(self, request: Request) -> Session | Response:
        """The signed-in session, or a redirection to the sign-in page."""
        session = self.sessions.of(request)
        if session is None or not session.signed_in:
            return RedirectResponse("/signin", status_code=303)
        return session

    async def signed_in_form(self, request: Request) -> tuple[Session, FormData] | Response:
        """The signed-in session and the form it posted with its form token; else the answer
        to give instead (the sign-in page, or the expired-form page)."""
        session = self.signed_in(request)
        if isinstance(session, Response):
            return session
        form = await self.checked_form(request, session)
        if form is None:
            return self.forbidden_form(request)
        return session, form

    def forbidden_form(self, request: Request) -> HTMLResponse:
        """The page for a form without the right form token (CSRF)."""
        return self.error(request, 403, "Ce formulaire a expiré.",
                          "Rechargez la page et recommencez.")  # fmt: skip
