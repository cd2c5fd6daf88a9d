"""interops.habilitation.v1.AccountService: the ways back into a portal account whose password is
lost (registry/habilitation/recovery.py holds the rules).

The public methods count against the sign-in limits of the identity and of the caller's address
(the HTTP client's, for a call the node's web adapter forwards: server/rpc/client_address.py),
and answer alike whether or not an account exists. An e-mailed code is looked up, written and
sent after the answer, off its path, so that its time tells nothing either; neither the address
nor the code is ever logged. A reset cuts the account's live chains in its transaction; the node
then refuses them at once (`revocations_changed`), other replicas within their poll interval.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import TypeVar

from interops.habilitation.v1 import account_pb2 as pb
from interops.habilitation.v1 import account_pb2_grpc

from registry.habilitation.recovery import (
    SECRET_QUESTIONS,
    AccountRecovery,
    Refused,
)
from registry.kernel.contract_enums import contract_value
from registry.kernel.rights import ACCOUNT_SUPPORT, HABILITATION_MANAGE
from registry.letters.store import LetterRefused
from registry.trust.declarant_store import SignInRefused
from server.audit.journal import note
from server.habilitation.service import declarant_id
from server.rpc.auth_interceptor import current_principal
from server.rpc.client_address import client_address
from server.rpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
)
from server.rpc.handler_wrapping import Context
from server.token.service import sign_in_refusal

T = TypeVar("T")
log = logging.getLogger("interops.accounts")

RESET_SUBJECT = "Réinitialisation de votre mot de passe InterOPS"
RESET_TEXT = (
    "Bonjour,\n\n"
    "Une réinitialisation du mot de passe de votre compte du portail InterOPS a été "
    "demandée.\n\n"
    "Code de réinitialisation : {code}\n\n"
    "Saisissez-le sur la page « Mot de passe perdu » du portail, avec votre identité et votre "
    "nouveau mot de passe. Il ne sert qu'une fois et n'est valable qu'une heure.\n\n"
    "Si vous n'avez rien demandé, ne tenez pas compte de ce message : votre mot de passe actuel "
    "reste valable. Ne communiquez ce code à personne : ni le portail ni son support ne vous le "
    "demanderont.\n"
)
# How each rule's refusal is told (TOO_MANY_ATTEMPTS and INVALID_ARGUMENT apart).
_REFUSALS: dict[str, type[ServiceError]] = {
    "INVALID_CREDENTIALS": Unauthenticated,
    "NOT_AN_ADMINISTRATOR": PermissionDenied,
    "NOT_YOUR_ESTABLISHMENT": PermissionDenied,
    "UNKNOWN_DECLARANT": NotFound,
    "ACCOUNT_INACTIVE": FailedPrecondition,
    "UNKNOWN_ESTABLISHMENT": NotFound,
    "ESTABLISHMENT_CEASED": FailedPrecondition,
    "NO_POSTAL_ADDRESS": FailedPrecondition,
}


async def _ruled(call: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Runs a recovery rule in a thread; its refusal becomes the matching status."""
    try:
        return await asyncio.to_thread(functools.partial(call, *args, **kwargs))
    except Refused as refused:
        raise _told(refused.reason, refused.message, refused.retry_after) from None
    except LetterRefused as refused:
        raise _told(refused.reason, str(refused)) from None


def _told(reason: str, message: str, retry_after: int = 0) -> ServiceError:
    if reason == "TOO_MANY_ATTEMPTS":
        return sign_in_refusal(SignInRefused(reason, message, retry_after))
    if reason == "INVALID_ARGUMENT":
        return InvalidArgument(reason, message, violations=[FieldViolation("answer", message)])
    return _REFUSALS.get(reason, FailedPrecondition)(reason, message)


def _triplet(identity: pb.AccountIdentity) -> tuple[str, str, str]:
    return identity.siret, identity.last_name, identity.first_name


class AccountService(account_pb2_grpc.AccountServiceServicer):
    """Lost passwords: secret questions and one-time codes."""

    def __init__(
        self,
        recovery: AccountRecovery,
        mailer: Callable[[str, str, str], None],
        door_secret: bytes = b"",
        *,
        revocations_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.recovery = recovery
        # Sends an e-mail (to, subject, text): server/notify/smtp.py's mail_text.
        self.mailer = mailer
        # Whose calls the node's web adapter forwards (server/rpc/client_address.py).
        self.door_secret = door_secret
        self.revocations_changed = revocations_changed
        # E-mails being sent, held until sent (a task nobody holds may be collected).
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def sending(self) -> int:
        """How many e-mailed codes are being looked up or sent (off the answers' path)."""
        return len(self._sending)

    def _source(self, context: Context) -> str:
        return client_address(context, self.door_secret)

    async def _reset_done(self) -> None:
        await asyncio.to_thread(self.revocations_changed)

    # -- the secret question ---------------------------------------------------------------

    async def SetSecretQuestion(
        self, request: pb.SetSecretQuestionRequest, context: Context
    ) -> pb.SetSecretQuestionResponse:
        account = declarant_id()
        note(resource=f"account:{account}")
        question = pb.SecretQuestion.Name(request.question).removeprefix("SECRET_QUESTION_")
        await _ruled(self.recovery.set_secret_question, account, request.current_password,
                     question, request.answer, source=self._source(context))  # fmt: skip
        return pb.SetSecretQuestionResponse()

    async def GetSecretQuestion(
        self, request: pb.GetSecretQuestionRequest, context: Context
    ) -> pb.GetSecretQuestionResponse:
        name = await _ruled(self.recovery.question_of, *_triplet(request.identity),
                            source=self._source(context))  # fmt: skip
        return pb.GetSecretQuestionResponse(
            question=contract_value(pb.SecretQuestion, name), text=SECRET_QUESTIONS[name]
        )

    async def AnswerSecretQuestion(
        self, request: pb.AnswerSecretQuestionRequest, context: Context
    ) -> pb.AnswerSecretQuestionResponse:
        await _ruled(self.recovery.answer_secret_question, *_triplet(request.identity),
                     request.answer, request.new_password,
                     source=self._source(context))  # fmt: skip
        await self._reset_done()
        return pb.AnswerSecretQuestionResponse()

    # -- one-time codes --------------------------------------------------------------------

    async def RequestPasswordReset(
        self, request: pb.RequestPasswordResetRequest, context: Context
    ) -> pb.RequestPasswordResetResponse:
        digest = await _ruled(self.recovery.admit_email_request, *_triplet(request.identity),
                              source=self._source(context))  # fmt: skip
        task = asyncio.create_task(self._email_code(digest))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return pb.RequestPasswordResetResponse()

    async def _email_code(self, digest: bytes) -> None:
        """Writes and sends the identity's e-mailed code, if its account may have one."""
        try:
            emailed = await asyncio.to_thread(self.recovery.email_code, digest)
            if emailed is not None:
                await asyncio.to_thread(self.mailer, emailed.address, RESET_SUBJECT,
                                        RESET_TEXT.format(code=emailed.code))  # fmt: skip
        except Exception as error:  # told by its kind only: its text may name the address
            log.error("a password-reset e-mail was not sent: %s", type(error).__name__)

    async def ResetPassword(
        self, request: pb.ResetPasswordRequest, context: Context
    ) -> pb.ResetPasswordResponse:
        await _ruled(self.recovery.reset_password, *_triplet(request.identity), request.code,
                     request.new_password, source=self._source(context))  # fmt: skip
        await self._reset_done()
        return pb.ResetPasswordResponse()

    async def IssueResetCode(
        self, request: pb.IssueResetCodeRequest, context: Context
    ) -> pb.IssueResetCodeResponse:
        author = await self._administrator()
        note(resource=f"account:{request.account_id}")
        code, expires = await _ruled(self.recovery.issue_code, author, request.account_id)
        return pb.IssueResetCodeResponse(code=code, expires=expires)

    async def SupportPasswordReset(
        self, request: pb.SupportPasswordResetRequest, context: Context
    ) -> pb.SupportPasswordResetResponse:
        principal = current_principal()
        siret = request.identity.siret
        scope = principal.grants.get(ACCOUNT_SUPPORT)
        if scope is None or not scope.includes_siret(siret):
            raise PermissionDenied(
                "MISSING_GRANT", f"this chain does not hold {ACCOUNT_SUPPORT} over {siret}"
            )
        note(resource=f"establishment:{siret}")
        await _ruled(self.recovery.support_reset, *_triplet(request.identity),
                     author=principal.subject, request_id=request.request_id)  # fmt: skip
        return pb.SupportPasswordResetResponse()

    # -- unlocking -------------------------------------------------------------------------

    async def UnlockAccount(
        self, request: pb.UnlockAccountRequest, context: Context
    ) -> pb.UnlockAccountResponse:
        author = await self._administrator()
        note(resource=f"account:{request.account_id}")
        await _ruled(self.recovery.unlock, author, request.account_id)
        return pb.UnlockAccountResponse()

    async def _administrator(self) -> int:
        """The calling account: an active administrator now, whose chain holds
        habilitation.manage over its company (the rules check the account acted on is of it)."""
        author = declarant_id()
        siren = await _ruled(self.recovery.administrators_company, author)
        scope = current_principal().grants.get(HABILITATION_MANAGE)
        if scope is None or not (scope.everything or siren in scope.sirens):
            raise PermissionDenied(
                "MISSING_GRANT", f"this chain does not hold {HABILITATION_MANAGE} over the company"
            )
        return author
