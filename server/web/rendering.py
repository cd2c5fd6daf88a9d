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
        return self.error(request, status, _SAYS.get(error.code.name, "La demande a échoué."),
                          error.message)  # fmt: skip

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

    def forbidden_form(self, request: Request) -> HTMLResponse:
        """The page for a form without the right form token (CSRF)."""
        return self.error(request, 403, "Ce formulaire a expiré.",
                          "Rechargez la page et recommencez.")  # fmt: skip
