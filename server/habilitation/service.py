"""interops.habilitation.v1.HabilitationService: administrators, declarants, portfolios and
habilitations of the caller's company, bulk files as operations, and access decisions.

The caller of a management method is the declarant its chain names ("declarant:<id>"), and the
chain must hold habilitation.manage over that declarant's whole company; the habilitation rules
(registry/habilitation/store.py) then check that it is an active administrator. A NIR named in
CheckAccess is never written to a log, a span or an error message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from interops.habilitation.v1 import habilitation_pb2 as pb
from interops.habilitation.v1 import habilitation_pb2_grpc

from registry.habilitation.access_decision import decide
from registry.habilitation.bulk_file import BadBulkFile, counted_lines
from registry.habilitation.bulk_file import write_lines as export_lines
from registry.habilitation.store import Account, HabilitationRefused, HabilitationStore
from registry.kernel.rights import HABILITATION_MANAGE
from registry.letters.store import LetterRefused
from registry.operation.store import OperationStore
from registry.relations.store import RelationsStore
from registry.trust.declarant_store import AccountStatus, identity_digest, too_many_attempts
from registry.trust.sign_in_limits import SignInLimits
from server.audit.journal import note
from server.habilitation.bulk_worker import KIND as BULK_KIND
from server.habilitation.bulk_worker import BulkWorker
from server.operation.service import operation_message
from server.rpc import page_tokens
from server.rpc.auth_interceptor import current_principal
from server.rpc.client_address import client_address
from server.rpc.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
)
from server.rpc.handler_wrapping import Context
from server.token.service import sign_in_refusal

T = TypeVar("T")

log = logging.getLogger(__name__)
# How each rule's refusal is told.
_REFUSALS: dict[str, type[ServiceError]] = {
    "NOT_AN_ADMINISTRATOR": PermissionDenied,
    "NOT_YOUR_COMPANY": PermissionDenied,
    "BAD_ACTIVATION_KEY": PermissionDenied,
    "UNKNOWN_DECLARANT": NotFound,
    "UNKNOWN_PORTFOLIO": NotFound,
    "ACCOUNT_EXISTS": AlreadyExists,
    "PORTFOLIO_EXISTS": AlreadyExists,
    "REQUEST_ID_REUSED": AlreadyExists,
    "ALREADY_REGISTERED": AlreadyExists,
    "UNKNOWN_SIRET": InvalidArgument,
    "UNKNOWN_SERVICE": InvalidArgument,
    "NOT_MANAGED": PermissionDenied,
    "BAD_FIRM": InvalidArgument,
    "BAD_SUCCESSOR": InvalidArgument,
}
EXPORT_CHUNK = 64 * 1024


async def _ruled(call: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Runs a habilitation rule in a thread; its refusal becomes the matching status."""
    try:
        return await asyncio.to_thread(functools.partial(call, *args, **kwargs))
    except HabilitationRefused as refused:
        kind = _REFUSALS.get(refused.reason, FailedPrecondition)
        raise kind(refused.reason, refused.message) from None


def declarant_id() -> int:
    """The declarant the calling chain names."""
    subject = current_principal().subject
    kind, _, number = subject.partition(":")
    if kind != "declarant" or not number.isdecimal():
        raise PermissionDenied("NOT_A_DECLARANT", "this call is made by a declarant of the portal")
    return int(number)


def _names(identity: pb.Identity) -> tuple[str, str]:
    return identity.last_name, identity.first_name


class HabilitationService(habilitation_pb2_grpc.HabilitationServiceServicer):
    """Applies the habilitation rules for the caller's company."""

    def __init__(
        self,
        store: HabilitationStore,
        relations: RelationsStore,
        operations: OperationStore,
        worker: BulkWorker,
        *,
        limits: SignInLimits,
        door_secret: bytes,
        mailer: Callable[[str, str, str], None],
        revocations_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        # A strike-off, a removed habilitation or an ended mandate cuts the declarants' live
        # chains in the store's transaction; this makes the node refuse them at once (other
        # replicas follow within their poll interval).
        self.revocations_changed = revocations_changed
        self.relations = relations
        self.operations = operations
        self.queue = worker.queue
        self.worker = worker
        # The sign-in limits every door shares, and the secret of this node's web adapter.
        self.limits = limits
        self.door_secret = door_secret
        # Sends an e-mail (to, subject, text); the confirmation codes of registrations.
        self.mailer = mailer
        self._mails: set[asyncio.Future[None]] = set()

    async def _caller(self) -> Account:
        """The calling account: an active administrator now (not only when its chain was
        issued), whose chain holds habilitation.manage over its company."""
        account = await _ruled(self.store.administrator, declarant_id())
        scope = current_principal().grants.get(HABILITATION_MANAGE)
        if scope is None or not (scope.everything or account.siren in scope.sirens):
            raise PermissionDenied(
                "MISSING_GRANT", f"this chain does not hold {HABILITATION_MANAGE} over the company"
            )
        note(resource=f"company:{account.siren}")
        return account

    # -- accounts (public) -----------------------------------------------------------------

    async def _admitted(self, identity: bytes, context: Context) -> str:
        """Counts the attempt against the sign-in limits shared by every door; the caller's
        source, or RESOURCE_EXHAUSTED when it must wait."""
        source = client_address(context, self.door_secret)
        wait = await asyncio.to_thread(self.limits.admit, identity, source)
        if wait:
            raise sign_in_refusal(too_many_attempts(wait))
        return source

    async def _register(self, identity: pb.Identity, request_id: str, context: Context) -> None:
        """RegisterCompany and ApplyAsAdministrator: the same registration, the same answer
        whether or not the triplet has an account (the e-mail goes off the answer's path)."""
        if not identity.email:
            raise InvalidArgument(
                "EMAIL_REQUIRED", "an administrator registers with an e-mail address",
                violations=[FieldViolation("identity.email", "required to register")],
            )  # fmt: skip
        digest = identity_digest(identity.siret, identity.last_name, identity.first_name)
        await self._admitted(digest, context)
        note(resource=f"company:{identity.siret[:9]}")
        try:
            made = await _ruled(self.store.register, identity.siret, _names(identity),
                                identity.password, identity.email, request_id)  # fmt: skip
        except LetterRefused as refused:
            raise FailedPrecondition(refused.reason, str(refused)) from None
        if made is not None:  # not a retry: the same e-mail whether the triplet had an account
            self._mail_code(identity.email, made.email_code)

    def _mail_code(self, email: str, code: str) -> None:
        """Sends the e-mail confirmation code in the background: its time is not the answer's."""
        text = (
            "Vous avez demandé un accès administrateur sur le portail. Pour confirmer votre "
            f"adresse électronique, donnez ce code : {code}\n"
            "Un courrier portant une clé d'activation part alors à l'adresse de votre "
            "établissement ; votre compte sera actif quand vous l'aurez donnée avec votre mot de "
            "passe (ou quand un administrateur de votre entreprise vous aura validé).\n"
            "Si vous avez déjà un compte, ce code ne change rien : connectez-vous, ou utilisez "
            "le mot de passe oublié.\n"
            "Si vous n'avez rien demandé, ignorez ce message."
        )
        task = asyncio.get_running_loop().run_in_executor(
            None, self.mailer, email, "Confirmez votre adresse électronique", text
        )
        self._mails.add(task)
        task.add_done_callback(self._mailed)

    def _mailed(self, task: asyncio.Future[None]) -> None:
        self._mails.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("an account's confirmation e-mail was not sent: %s",
                        type(task.exception()).__name__)  # fmt: skip

    async def RegisterCompany(
        self, request: pb.RegisterCompanyRequest, context: Context
    ) -> pb.RegisterCompanyResponse:
        await self._register(request.identity, request.request_id, context)
        return pb.RegisterCompanyResponse()

    async def ApplyAsAdministrator(
        self, request: pb.ApplyAsAdministratorRequest, context: Context
    ) -> pb.ApplyAsAdministratorResponse:
        await self._register(request.identity, request.request_id, context)
        return pb.ApplyAsAdministratorResponse()

    async def ActivateAdministrator(
        self, request: pb.ActivateAdministratorRequest, context: Context
    ) -> pb.ActivateAdministratorResponse:
        """The letter's key with the candidate's own triplet and password: a key in someone
        else's hands activates nothing; each attempt counts against the identity's and the
        caller's sign-in limits."""
        identity = request.identity
        digest = identity_digest(identity.siret, identity.last_name, identity.first_name)
        source = await self._admitted(digest, context)
        account = await asyncio.to_thread(
            self.store.activate_with_key, digest, identity.password, request.activation_key
        )
        if account is None:
            raise PermissionDenied(
                "BAD_ACTIVATION_KEY", "this key, account or password is not valid now"
            )
        await asyncio.to_thread(self.limits.succeeded, digest, source)
        return pb.ActivateAdministratorResponse(account_id=account)

    async def ConfirmEmail(
        self, request: pb.ConfirmEmailRequest, context: Context
    ) -> pb.ConfirmEmailResponse:
        """Each guess counts against the caller's address (the code is its own identity: no
        stranger's guesses delay anyone). The answer names no account: a registration of a
        triplet that has one sends a code too, which confirms nothing new."""
        code = request.code.encode()
        source = await self._admitted(code, context)
        if not await asyncio.to_thread(self.store.confirm_email, request.code):
            raise PermissionDenied("BAD_EMAIL_CODE", "this code is not valid now")
        await asyncio.to_thread(self.limits.succeeded, code, source)
        return pb.ConfirmEmailResponse()

    # -- accounts (administrators) ---------------------------------------------------------

    async def ValidateCandidate(
        self, request: pb.ValidateCandidateRequest, context: Context
    ) -> pb.ValidateCandidateResponse:
        author = await self._caller()
        await _ruled(self.store.validate_candidate, author.id, request.account_id)
        return pb.ValidateCandidateResponse()

    async def CreateDeclarant(
        self, request: pb.CreateDeclarantRequest, context: Context
    ) -> pb.CreateDeclarantResponse:
        author = await self._caller()
        identity = request.identity
        account = await _ruled(self.store.create_declarant, author.id, identity.siret,
                               _names(identity), identity.password,
                               request.request_id)  # fmt: skip
        return pb.CreateDeclarantResponse(account_id=account)

    async def StrikeOff(
        self, request: pb.StrikeOffRequest, context: Context
    ) -> pb.StrikeOffResponse:
        author = await self._caller()
        moved = await _ruled(self.store.strike_off, author.id, request.account_id,
                             request.successor_id)  # fmt: skip
        await asyncio.to_thread(self.revocations_changed)
        return pb.StrikeOffResponse(transferred=moved)

    async def ListAccounts(
        self, request: pb.ListAccountsRequest, context: Context
    ) -> pb.ListAccountsResponse:
        author = await self._caller()
        query = ("accounts", author.siren)
        after = page_tokens.decode(request.page_token, query, 1)
        size = page_tokens.page_size(request.page_size)
        found = await asyncio.to_thread(self.store.accounts_of, author.siren, size + 1,
                                        int(after[0]) if after else 0)  # fmt: skip
        found, token = page_tokens.cut(found, size, query, lambda a: [str(a.id)])
        # A candidate's address, so that an administrator knows whom it validates.
        emails = {
            a.id: await asyncio.to_thread(self.store.email_of, a.id)
            for a in found
            if a.status == AccountStatus.CANDIDATE
        }
        return pb.ListAccountsResponse(
            accounts=[pb.Account(id=a.id, siret=a.siret, role=a.role.to_proto(),
                                 status=a.status.to_proto(), email=emails.get(a.id) or "",
                                 last_name=a.names[0] if a.names else "",
                                 first_name=a.names[1] if a.names else "")
                      for a in found],
            next_page_token=token,
        )  # fmt: skip

    # -- portfolios ------------------------------------------------------------------------

    async def CreatePortfolio(
        self, request: pb.CreatePortfolioRequest, context: Context
    ) -> pb.CreatePortfolioResponse:
        author = await self._caller()
        await _ruled(self.store.create_portfolio, author.id, request.name, request.request_id)
        return pb.CreatePortfolioResponse(name=request.name)

    async def UpdatePortfolio(
        self, request: pb.UpdatePortfolioRequest, context: Context
    ) -> pb.UpdatePortfolioResponse:
        author = await self._caller()
        changed, warning = 0, ""
        for add, sirets, services in (
            (False, request.remove_sirets, request.remove_services),
            (True, request.add_sirets, request.add_services),
        ):
            if sirets or services:
                done, warning = await _ruled(self.store.change_portfolio, author.id,
                                             request.name, add=add, sirets=tuple(sirets),
                                             services=tuple(services))  # fmt: skip
                changed += done
        if request.remove_sirets or request.remove_services:
            await asyncio.to_thread(self.revocations_changed)
        return pb.UpdatePortfolioResponse(changed=changed, warning=warning)

    async def ListPortfolios(
        self, request: pb.ListPortfoliosRequest, context: Context
    ) -> pb.ListPortfoliosResponse:
        author = await self._caller()
        query = ("portfolios", author.siren)
        after = page_tokens.decode(request.page_token, query, 1)
        size = page_tokens.page_size(min(request.page_size or 20, 100))
        found = await asyncio.to_thread(self.store.portfolios_of, author.siren, size + 1,
                                        after[0] if after else "")  # fmt: skip
        found, token = page_tokens.cut(found, size, query, lambda p: [p.name])
        return pb.ListPortfoliosResponse(
            portfolios=[pb.Portfolio(name=p.name, kind=p.kind.to_proto(), sirets=p.sirets,
                                     services=p.services) for p in found],
            next_page_token=token,
        )  # fmt: skip

    # -- habilitations ---------------------------------------------------------------------

    async def GrantHabilitation(
        self, request: pb.GrantHabilitationRequest, context: Context
    ) -> pb.GrantHabilitationResponse:
        author = await self._caller()
        h = request.habilitation
        changed = await _ruled(self.store.grant, author.id, h.account_id, h.siret, h.service)
        return pb.GrantHabilitationResponse(changed=changed)

    async def RevokeHabilitation(
        self, request: pb.RevokeHabilitationRequest, context: Context
    ) -> pb.RevokeHabilitationResponse:
        author = await self._caller()
        h = request.habilitation
        changed = await _ruled(self.store.revoke, author.id, h.account_id, h.siret, h.service)
        if changed:
            await asyncio.to_thread(self.revocations_changed)
        return pb.RevokeHabilitationResponse(changed=changed)

    async def ListHabilitations(
        self, request: pb.ListHabilitationsRequest, context: Context
    ) -> pb.ListHabilitationsResponse:
        author = await self._caller()
        query = ("habilitations", author.siren, request.account_id)
        after = page_tokens.decode(request.page_token, query, 3)
        size = page_tokens.page_size(request.page_size)
        key = (int(after[0]), after[1], after[2]) if after else (0, "", "")
        found = await asyncio.to_thread(
            functools.partial(self.store.company_habilitations, author.siren, size + 1, key,
                              declarant_id=request.account_id)
        )  # fmt: skip
        found, token = page_tokens.cut(
            found, size, query, lambda h: [str(h.declarant_id), h.siret, h.service]
        )
        return pb.ListHabilitationsResponse(
            habilitations=[pb.Habilitation(account_id=h.declarant_id, siret=h.siret,
                                           service=h.service) for h in found],
            next_page_token=token,
        )  # fmt: skip

    async def ListAdminActs(
        self, request: pb.ListAdminActsRequest, context: Context
    ) -> pb.ListAdminActsResponse:
        author = await self._caller()
        query = ("acts", author.siren)
        after = page_tokens.decode(request.page_token, query, 1)
        size = page_tokens.page_size(request.page_size)
        found = await asyncio.to_thread(self.store.acts, author.siren, size + 1,
                                        int(after[0]) if after else 0)  # fmt: skip
        found, token = page_tokens.cut(found, size, query, lambda a: [str(a.id)])
        return pb.ListAdminActsResponse(
            acts=[pb.AdminAct(author=a.author, act=a.act, target=a.target, detail=a.detail,
                              at=a.at) for a in found],
            next_page_token=token,
        )  # fmt: skip

    # -- bulk files ------------------------------------------------------------------------

    async def ImportHabilitations(
        self, request: pb.ImportHabilitationsRequest, context: Context
    ) -> pb.ImportHabilitationsResponse:
        author = await self._caller()
        try:
            lines = counted_lines(request.content)
        except BadBulkFile as bad:
            raise InvalidArgument(
                bad.reason, bad.message, violations=[FieldViolation("content", bad.detail)]
            ) from None
        request_id = f"{author.siren}:{request.request_id}" if request.request_id else ""
        record, created = await asyncio.to_thread(
            self.operations.create, BULK_KIND, "lines", lines, request_id
        )
        if created:
            await asyncio.to_thread(self.queue.enqueue, record.id, author.siren, author.id,
                                    request.content)  # fmt: skip
            self.worker.wake()
        return pb.ImportHabilitationsResponse(operation=operation_message(record))

    async def GetBulkOperation(
        self, request: pb.GetBulkOperationRequest, context: Context
    ) -> pb.GetBulkOperationResponse:
        author = await self._caller()
        operation_id = request.name.removeprefix("operations/")
        siren = await asyncio.to_thread(self.queue.siren_of, operation_id)
        record = await asyncio.to_thread(self.operations.get, operation_id)
        if siren != author.siren or record is None:  # another company's is not told apart
            raise NotFound("OPERATION_NOT_FOUND", f"no bulk operation {request.name}")
        return pb.GetBulkOperationResponse(operation=operation_message(record))

    async def ExportHabilitations(
        self, request: pb.ExportHabilitationsRequest, context: Context
    ) -> AsyncIterator[pb.ExportHabilitationsResponse]:
        author = await self._caller()
        portfolios = await asyncio.to_thread(self.store.portfolios_of, author.siren)
        held = await asyncio.to_thread(self.store.company_habilitations, author.siren)
        buffer: list[str] = []
        size = 0
        for line in export_lines(portfolios, held):
            buffer.append(line)
            size += len(line)
            if size >= EXPORT_CHUNK:
                yield pb.ExportHabilitationsResponse(chunk="".join(buffer).encode())
                buffer, size = [], 0
        if buffer:
            yield pb.ExportHabilitationsResponse(chunk="".join(buffer).encode())

    # -- access decisions ------------------------------------------------------------------

    async def GrantFirmMandate(
        self, request: pb.GrantFirmMandateRequest, context: Context
    ) -> pb.GrantFirmMandateResponse:
        author = await self._caller()
        mandate = request.mandate
        granted = await _ruled(self.store.grant_mandate, author.id, mandate.client_siret,
                               mandate.firm_siren)  # fmt: skip
        return pb.GrantFirmMandateResponse(granted=granted)

    async def EndFirmMandate(
        self, request: pb.EndFirmMandateRequest, context: Context
    ) -> pb.EndFirmMandateResponse:
        author = await self._caller()
        mandate = request.mandate
        ended = await _ruled(self.store.end_mandate, author.id, mandate.client_siret,
                             mandate.firm_siren)  # fmt: skip
        if ended:
            await asyncio.to_thread(self.revocations_changed)
        return pb.EndFirmMandateResponse(ended=ended)

    async def ListFirmMandates(
        self, request: pb.ListFirmMandatesRequest, context: Context
    ) -> pb.ListFirmMandatesResponse:
        author = await self._caller()
        found = await asyncio.to_thread(self.store.mandates_of, author.siren)
        return pb.ListFirmMandatesResponse(mandates=[
            pb.ListedFirmMandate(
                mandate=pb.FirmMandate(client_siret=m.client_siret, firm_siren=m.firm_siren),
                granted_at=m.granted_at, ended_at=m.ended_at,
            )
            for m in found
        ])  # fmt: skip

    async def CheckAccess(
        self, request: pb.CheckAccessRequest, context: Context
    ) -> pb.CheckAccessResponse:
        declarant = declarant_id()
        if request.employees and not request.date:
            raise InvalidArgument(
                "DATE_REQUIRED", "employees are checked on a date",
                violations=[FieldViolation("date", "required with employees")],
            )  # fmt: skip
        note(resource=f"service:{request.service}")
        decision = await asyncio.to_thread(
            functools.partial(
                decide, self.relations, declarant, request.service,
                sirets=list(request.sirets),
                employees=[(e.siret, e.nir) for e in request.employees], date=request.date,
            )
        )  # fmt: skip
        return pb.CheckAccessResponse(
            allowed=decision.allowed,
            refusals=[pb.Refusal(subject=s, reason=r) for s, r in decision.refusals],
        )
