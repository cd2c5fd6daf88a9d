"""The generic sign-in page (MAG) and navigation to partner sites.

A partner site sends its user to /signin?partner=CODE&return_to=URL (the URL must start with one
of the partner's endpoints in the trust directory). After sign-in, or at once for a user signed
in already, the user goes back to the partner carried by a single-use NAVIGATION chain in a POST
form (never in a URL): the portal chain with one hop to the partner's current directory key, which
the partner accepts offline as its holder (token_suite Verifier.accept).

The node limits sign-in attempts, per identity and per client address, for every door at once
(registry/trust/sign_in_limits.py): the form passes the client's address on with the node's door
secret, and tells a client to wait (429, Retry-After) when the node says so.

Each sign-in makes the session its own Ed25519 key, which the portal chain names as its holder;
the key never leaves the adapter (but sealed, in the sessions the nodes share: sessions.py), and
every call made for the session (VerifyToken, DelegateToken, the dashboard's) carries a proof by
it. Sign-out revokes the chain's root block.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from interops.token.v1 import token_pb2, token_service_pb2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clients.errors import InteropsError
from clients.token_calls import current_key
from registry.kernel.rights import HABILITATION_CHECK
from server.web.node_calls import NodeCalls, client_of
from server.web.rendering import Pages
from server.web.sessions import COOKIE, Session, Sessions
from token_suite import keys
from token_suite.chain import Signer, inspect
from token_suite.wire import to_text

log = logging.getLogger("interops.web")

TOKEN_SERVICE = "/interops.token.v1.TokenService"  # noqa: S105 -- a service name
# What the portal chain of a signed-in user is for; partner sites are added to it.
PORTAL_AUDIENCE = (
    "interops.dsn.v1.DepositService",
    "interops.notify.v1.NotificationService",
    "interops.habilitation.v1.HabilitationService",
    "interops.audit.v1.AuditService",
    "interops.registry.v1.RegistryService",
    "interops.trace.v1.TraceService",  # the operator page's waterfall (audit.read)
    "interops.mandate.v1.MandateService",  # the mandates page (mandate.manage)
)
NAVIGATION_SECONDS = 60
DIRECTORY_SECONDS = 30.0


@dataclass(frozen=True)
class Partner:
    """A partner site of the trust directory."""

    code: str
    name: str
    endpoints: tuple[str, ...]
    # The site's key in use in the directory: the holder its hand-backs name ("" when none).
    key_id: str = ""

    def accepts(self, url: str) -> bool:
        """True when the URL is one of the site's (starts with one of its endpoints)."""
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and any(
            url == e or url.startswith(e.rstrip("/") + "/") for e in self.endpoints
        )


def _failure(error: InteropsError) -> tuple[int, str]:
    """The HTTP status and the words of a refused sign-in."""
    if error.reason == "TOO_MANY_ATTEMPTS":
        return 429, f"Trop de tentatives : réessayez dans {_retry_after(error)} secondes."
    if error.reason == "ACCOUNT_INACTIVE":
        return 401, "Ce compte n'est pas encore actif."
    if error.code.name == "INVALID_ARGUMENT":
        return 401, "Renseignez un SIRET de 14 chiffres, vos nom, prénom et mot de passe."
    return 401, "Identifiants incorrects."


def _retry_after(error: InteropsError) -> str:
    """The whole seconds the node says to wait (at least one)."""
    told = error.metadata.get("retry_after_seconds", "")
    return told if told.isdigit() and int(told) > 0 else "1"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SignInPages:
    """Sign-in, sign-out and the hand-back to partner sites."""

    def __init__(self, node: NodeCalls, pages: Pages, sessions: Sessions) -> None:
        self.node = node
        self.pages = pages
        self.sessions = sessions
        self._partners: tuple[float, dict[str, Partner]] = (0.0, {})

    async def partners(self) -> dict[str, Partner]:
        """The partner sites of the directory (read again every 30 s)."""
        read_at, known = self._partners
        if time.monotonic() - read_at < DIRECTORY_SECONDS:
            return known
        answer = await self.node.unary(f"{TOKEN_SERVICE}/GetDirectory",
                                       token_service_pb2.GetDirectoryRequest(),
                                       token_service_pb2.GetDirectoryResponse)  # fmt: skip
        directory = token_pb2.Directory.FromString(answer.directory.payload)
        now = time.time()
        known = {
            o.code: Partner(o.code, o.name, tuple(o.endpoints), current_key(directory, o.code, now))
            for o in directory.organisms
            if o.kind == token_pb2.ORGANISM_KIND_PARTNER_SITE and o.endpoints
        }
        self._partners = (time.monotonic(), known)
        return known

    async def _destination(self, request: Request, partner: str, return_to: str) -> Partner | None:
        """The partner a sign-in hands back to; ValueError when the request names a site or
        an address the directory does not know."""
        if not partner and not return_to:
            return None
        site = (await self.partners()).get(partner)
        if site is None or not site.accepts(return_to):
            raise ValueError("this partner site, or its return address, is not known")
        return site

    async def show(self, request: Request) -> Response:
        """GET /signin: the form, or straight back to the partner for a user signed in."""
        partner = request.query_params.get("partner", "")
        return_to = request.query_params.get("return_to", "")
        try:
            site = await self._destination(request, partner, return_to)
        except ValueError as error:
            return self.pages.error(request, 400, "Lien de connexion incorrect.", str(error))
        session, new = self.pages.session(request)
        if site is not None and session.signed_in:
            return await self._hand_back(request, session, site, return_to)
        return self.pages.render(request, "signin.html", session, new, partner=site,
                                 return_to=return_to, siret="", failure="")  # fmt: skip

    async def submit(self, request: Request) -> Response:
        """POST /signin: checks the triplet and password through TokenService."""
        session, new = self.pages.session(request)
        form = await self.pages.checked_form(request, session)
        if form is None:
            return self.pages.forbidden_form(request)
        values = {k: str(form.get(k, "")).strip() for k in
                  ("siret", "last_name", "first_name", "partner", "return_to")}  # fmt: skip
        try:
            site = await self._destination(request, values["partner"], values["return_to"])
        except ValueError as error:
            return self.pages.error(request, 400, "Lien de connexion incorrect.", str(error))
        try:
            signed_in = await self._sign_in(values, str(form.get("password", "")),
                                            client_of(request))  # fmt: skip
        except InteropsError as error:
            status, failure = _failure(error)
            refused = self.pages.render(request, "signin.html", session, new, status=status,
                                        partner=site, return_to=values["return_to"],
                                        siret=values["siret"], failure=failure)  # fmt: skip
            if status == 429:
                refused.headers["Retry-After"] = _retry_after(error)
            return refused
        await self.sessions.end(session)  # the signed-in session has a new id (no fixation)
        response: Response
        if site is not None:
            response = await self._hand_back(request, signed_in, site, values["return_to"])
        else:
            response = RedirectResponse("/dashboard", status_code=303)
        self.sessions.set_cookie(request, response, signed_in)
        return response

    async def _sign_in(self, values: dict[str, str], password: str, client: str) -> Session:
        """A new session for the declarant, once TokenService issued its portal chain to the
        session's own key (the node counts the attempt against `client`, an address)."""
        partners = sorted(await self.partners())[:10]
        key = keys.generate()
        public = keys.public_bytes(key)
        request = token_service_pb2.IssueTokenRequest(
            declarant=token_service_pb2.DeclarantSignIn(
                siret=values["siret"], last_name=values["last_name"],
                first_name=values["first_name"], password=password),
            profile=token_pb2.PROFILE_PORTAL, audience=[*PORTAL_AUDIENCE, *partners],
            holder=token_pb2.Party(public_key=public),
            lifetime_seconds=3600, max_hops=1,  # one hop: to a partner site
        )  # fmt: skip
        issued = await self.node.unary(f"{TOKEN_SERVICE}/IssueToken", request,
                                       token_service_pb2.IssueTokenResponse,
                                       client=client)  # fmt: skip
        portal = inspect(issued.token)[0].holder.organism
        session = self.sessions.new(max(1.0, issued.expires - time.time()))
        session.token = issued.token
        session.signer = Signer(portal, keys.key_id_of(public), key)
        verify = f"{TOKEN_SERVICE}/VerifyToken"
        verified = await self.node.unary(
            verify,
            token_service_pb2.VerifyTokenRequest(token=issued.token, audience=PORTAL_AUDIENCE[0]),
            token_service_pb2.VerifyTokenResponse, proof=session.proof(verify),
        )  # fmt: skip
        principal = verified.principal
        session.subject = principal.subject
        session.siret = values["siret"]
        session.name = f"{values['first_name']} {values['last_name']}"
        session.grants = {g.right: ("*",) if g.all_establishments else (*g.sirens, *g.sirets)
                          for g in principal.grants}  # fmt: skip
        return session

    async def navigate(self, request: Request) -> Response:
        """POST /navigate: a signed-in user goes to a partner site without signing in again."""
        posted = await self.pages.signed_in_form(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        site = (await self.partners()).get(str(form.get("partner", "")))
        if site is None:
            return self.pages.error(request, 404, "Ce site partenaire n'est pas connu.")
        return await self._hand_back(request, session, site, site.endpoints[0].rstrip("/")
                                     + "/callback")  # fmt: skip

    async def _hand_back(
        self, request: Request, session: Session, site: Partner, return_to: str
    ) -> Response:
        """The page that posts a single-use NAVIGATION chain, held by the partner's current
        directory key, to the partner."""
        siren = session.siret[:9]
        hop = token_service_pb2.DelegateTokenRequest(
            token=session.token, holder=token_pb2.Party(organism=site.code, key_id=site.key_id),
            profile=token_pb2.PROFILE_NAVIGATION, audience=[site.code],
            grants=[token_pb2.Grant(right=HABILITATION_CHECK, sirens=[siren])],
            lifetime_seconds=NAVIGATION_SECONDS, purpose=f"navigation to {site.code}",
        )  # fmt: skip
        try:
            delegate = f"{TOKEN_SERVICE}/DelegateToken"
            delegated = await self.node.unary(delegate, hop,
                                              token_service_pb2.DelegateTokenResponse,
                                              proof=session.proof(delegate))  # fmt: skip
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        request.state.form_action = _origin(return_to)
        token = to_text(delegated.token)
        return self.pages.render(request, "handback.html", session, partner=site,
                                 return_to=return_to, token=token)  # fmt: skip

    async def sign_out(self, request: Request) -> Response:
        """POST /signout: revokes the session's chain (its root block, so every hop handed on
        from it too), then forgets the session and its key."""
        session = self.sessions.of(request)
        if session is not None:
            form = await self.pages.checked_form(request, session)
            if form is None:
                return self.pages.forbidden_form(request)
            if session.signed_in:
                await self._revoke(session)
            await self.sessions.end(session)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def _revoke(self, session: Session) -> None:
        """RevokeToken on the root block with a proof by the session's key. A failure does not
        keep the user signed in: the key is forgotten anyway, which leaves the chain usable by
        nobody; it is logged (without the chain)."""
        revoke = f"{TOKEN_SERVICE}/RevokeToken"
        try:
            await self.node.unary(
                revoke, token_service_pb2.RevokeTokenRequest(token=session.token, block=0),
                token_service_pb2.RevokeTokenResponse, proof=session.proof(revoke),
            )  # fmt: skip
        except InteropsError as error:
            log.warning("sign-out of %s: the chain was not revoked (%s)", session.subject,
                        error.reason)  # fmt: skip
