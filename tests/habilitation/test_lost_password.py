"""Lost passwords (interops.habilitation.v1.AccountService) through a real node and a real SMTP
server, on each backend: the four ways back (secret question, code by e-mail, code from an
administrator of the same establishment, code by the support's postal letter) each end with the
new password signing in, the old one refused and the old live chain cut; every public answer is
the same, status and details, for an unknown triplet, an inactive account and a wrong secret;
codes are single-use and expire; the sign-in limits stop guessing of answers and codes; and an
administrator's unlock lets a throttled account in at once."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from interops.habilitation.v1 import account_pb2 as pb
from interops.habilitation.v1 import account_pb2_grpc
from sqlalchemy import insert, select, update

from clients.client import Client
from clients.credentials import SyncCredentialsInterceptor
from clients.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from registry.habilitation.recovery import (
    ADMIN_CODE_SECONDS,
    SECRET_QUESTIONS,
    code_digest,
    new_code,
    normalized_answer,
)
from registry.habilitation.store import HabilitationStore
from registry.kernel.sealing import load_or_create_key
from registry.letters.schema import postal_letters
from registry.letters.store import LetterKind, LetterStore
from registry.notify.schema import notifications
from registry.rcd.sirene_synth import siren_at, siret_of
from registry.trust.account_seals import seal_email
from registry.trust.declarant_store import account_row
from registry.trust.passwords import hash_password
from registry.trust.schema import declarants
from server.notify.dispatch import MailSettings
from tests.registry_rows import in_registry
from tests.running_node import RunningNode
from tests.sign_in_waits import prime
from token_suite.chain import Signer

ACCOUNTS = "interops.habilitation.v1.AccountService"
COMPANY, OTHER_COMPANY = siren_at(150), siren_at(151)
HEAD, BRANCH = siret_of(COMPANY, 1), siret_of(COMPANY, 2)
ELSEWHERE = siret_of(OTHER_COMPANY, 1)
NOT_IN_RCD = siret_of(siren_at(152), 1)
PASSWORD = "first password"
NEW_PASSWORD = "second password"
CODE_IN_MAIL = re.compile(r"Code de réinitialisation : (\S+)")
CODE_IN_LETTER = re.compile(r"Code de réinitialisation de votre mot de passe : (\S+)")


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[Any] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"

    def to(self, address: str) -> list[Any]:
        """The messages sent to the address."""
        return [m for m in self.messages if m["To"] == address]


@dataclass(frozen=True)
class Person:
    """A triplet, and its account's id (0: none)."""

    siret: str
    last: str
    first: str
    id: int = 0

    def identity(self) -> pb.AccountIdentity:
        return pb.AccountIdentity(siret=self.siret, last_name=self.last, first_name=self.first)


@pytest.fixture(scope="module")
def mailbox(database_url: str) -> Iterator[Mailbox]:
    with socket.socket() as probe:  # a free port (the controller checks it by connecting)
        probe.bind(("127.0.0.1", 0))
        box = Mailbox(port=probe.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def node(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
) -> Iterator[RunningNode]:
    """The module's node, its e-mail going to the test's SMTP server, with room for all its
    tests' attempts from loopback in a minute (the per-identity limit is what is tested)."""
    running = RunningNode(database_url, tmp_path_factory.mktemp("data"),
                          mail=MailSettings(port=mailbox.port),
                          sign_in_attempts_a_minute=1000)  # fmt: skip
    in_registry(running.node.engine, [HEAD, BRANCH, ELSEWHERE])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sealer(node: RunningNode) -> AESGCM:
    """The node's at-rest key (its e-mail addresses and letters are sealed with it)."""
    return AESGCM(load_or_create_key(node.settings.data_dir / "keys" / "data.key"))


@pytest.fixture(scope="module")
def raw(node: RunningNode) -> Iterator[account_pb2_grpc.AccountServiceStub]:
    """The service's generated stub, anonymous: failures as the node sent them."""
    with grpc.insecure_channel(node.address) as channel:
        yield account_pb2_grpc.AccountServiceStub(channel)


@pytest.fixture(scope="module")
def anonymous(node: RunningNode) -> Iterator[Client]:
    with Client(node.address, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admins(node: RunningNode) -> dict[str, Person]:
    """Active administrators: of the head office, of a branch of the same company, and of
    another company."""
    return {
        "head": _open(node, HEAD, "Moreau", "Lina", role="ADMIN"),
        "branch": _open(node, BRANCH, "Garcia", "Ana", role="ADMIN"),
        "elsewhere": _open(node, ELSEWHERE, "Bernard", "Yves", role="ADMIN"),
    }


def _open(
    node: RunningNode,
    siret: str,
    last: str,
    first: str,
    *,
    role: str = "DECLARANT",
    status: str = "ACTIVE",
    email: str = "",
    confirmed: bool = True,
    sealer: AESGCM | None = None,
) -> Person:
    """An account, straight in the database, with the password PASSWORD."""
    with node.node.engine.begin() as connection:
        account = int(connection.execute(
            insert(declarants)
            .values({**account_row(siret, last, first, PASSWORD), "role": role, "status": status})
            .returning(declarants.c.id)
        ).scalar_one())  # fmt: skip
        if email:
            assert sealer is not None
            connection.execute(
                update(declarants).where(declarants.c.id == account)
                .values(email_sealed=seal_email(sealer, account, email), email_verified=confirmed)
            )  # fmt: skip
    return Person(siret, last, first, account)


def _question(node: RunningNode, person: Person, question: str, answer: str) -> None:
    """Gives the account a secret question, straight in the database."""
    with node.node.engine.begin() as connection:
        connection.execute(
            update(declarants).where(declarants.c.id == person.id)
            .values(secret_question=question,
                    secret_answer_hash=hash_password(normalized_answer(answer)))
        )  # fmt: skip


def _pending(node: RunningNode, person: Person, lasting: int = 3600) -> str:
    """Gives the account a pending code, straight in the database, expiring in `lasting` s."""
    code = new_code()
    with node.node.engine.begin() as connection:
        connection.execute(
            update(declarants).where(declarants.c.id == person.id)
            .values(reset_hash=code_digest(code), reset_expires=int(time.time()) + lasting)
        )  # fmt: skip
    return code


def _column(node: RunningNode, person: Person, name: str) -> Any:
    with node.node.engine.connect() as connection:
        return connection.execute(
            select(declarants.c[name]).where(declarants.c.id == person.id)
        ).scalar()


def _session(node: RunningNode, person: Person, password: str = PASSWORD) -> Client:
    """A client holding the person's new chain (it signs in)."""
    chain = node.sign_in(person.siret, person.last, person.first, password,
                         audience=[ACCOUNTS])  # fmt: skip
    return Client(node.address, credentials=chain, timeout=30)


def _signs_in(node: RunningNode, person: Person, password: str) -> bool:
    """True when the password signs the person in; False when it is refused as wrong."""
    try:
        node.sign_in(person.siret, person.last, person.first, password, audience=[ACCOUNTS])
    except Unauthenticated as refused:
        reason = refused.reason
    else:
        return True
    assert reason == "INVALID_CREDENTIALS"
    return False


def _outcome(call: Callable[..., Message], request: Message) -> tuple[str, bytes]:
    """What the node answered: "OK" and the response, or the code and the whole status."""
    try:
        response = call(request, timeout=30)
    except grpc.RpcError as error:
        failed: grpc.Call = error  # type: ignore[assignment]
        status = rpc_status.from_call(failed)
        assert status is not None
        return failed.code().name, status.SerializeToString(deterministic=True)
    return "OK", response.SerializeToString(deterministic=True)


def _info(outcome: tuple[str, bytes]) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert status_pb2.Status.FromString(outcome[1]).details[0].Unpack(info)
    return info


def _settled(node: RunningNode) -> None:
    """Waits until every e-mailed code asked for was looked up and sent (or not)."""
    deadline = time.monotonic() + 30
    while node.node.accounts.sending:
        assert time.monotonic() < deadline, "e-mailed codes still being sent"
        time.sleep(0.02)


def _chain_cut(session: Client) -> None:
    """The session's chain, issued before the reset, is refused at once."""
    request = pb.SetSecretQuestionRequest(
        current_password=NEW_PASSWORD, question=pb.SECRET_QUESTION_FIRST_CAR, answer="Clio"
    )
    with pytest.raises(Unauthenticated) as cut:
        session.set_secret_question(request)
    assert cut.value.reason == "REVOKED"


def _reset_done(node: RunningNode, person: Person, old_session: Client) -> None:
    """The new password signs in, the old one does not, the old chain is cut."""
    _chain_cut(old_session)
    assert not _signs_in(node, person, PASSWORD)
    assert _signs_in(node, person, NEW_PASSWORD)


def test_the_questions_are_the_contracts() -> None:
    names = [n.removeprefix("SECRET_QUESTION_") for n in pb.SecretQuestion.keys()[1:]]
    assert names == list(SECRET_QUESTIONS)
    code = new_code()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}", code)
    # Typed back from a letter: case, spaces and dashes, O for 0 and I or L for 1 do not matter.
    assert code_digest("OIL2-abc") == code_digest("0 1 1 2 A B C")
    assert code_digest(code) != code_digest(new_code())
    assert normalized_answer("  Médor   LE chien ") == normalized_answer("medor le CHIEN")


# -- 1. the secret question ----------------------------------------------------------------


def test_the_secret_question_lets_its_owner_choose_a_new_password(
    node: RunningNode, anonymous: Client
) -> None:
    eva = _open(node, HEAD, "Roche", "Eva")
    with _session(node, eva) as session:
        choose = pb.SetSecretQuestionRequest(current_password="not my password",
                                             question=pb.SECRET_QUESTION_FIRST_PET,
                                             answer="Médor le Chien")  # fmt: skip
        with pytest.raises(Unauthenticated) as wrong:
            session.set_secret_question(choose)
        assert wrong.value.reason == "INVALID_CREDENTIALS"
        choose.current_password = PASSWORD
        with pytest.raises(InvalidArgument) as short:  # two letters once spacing is set aside
            session.set_secret_question(
                pb.SetSecretQuestionRequest(current_password=PASSWORD,
                                            question=pb.SECRET_QUESTION_FIRST_PET, answer="é  é")
            )  # fmt: skip
        assert short.value.violations[0].field == "answer"
        session.set_secret_question(choose)
        assert _column(node, eva, "secret_answer_hash").startswith("scrypt$")
        shown = anonymous.get_secret_question(pb.GetSecretQuestionRequest(
            identity=eva.identity()))  # fmt: skip
        assert shown.question == pb.SECRET_QUESTION_FIRST_PET
        assert shown.text == "Quel est le nom de votre premier animal de compagnie ?"
        answer = pb.AnswerSecretQuestionRequest(identity=eva.identity(), answer="  MEDOR le chien",
                                                new_password=NEW_PASSWORD)  # fmt: skip
        anonymous.answer_secret_question(answer)
        _reset_done(node, eva, session)


def test_the_secret_question_tells_nobody_whether_an_account_exists(
    node: RunningNode, raw: account_pb2_grpc.AccountServiceStub
) -> None:
    owner = _open(node, HEAD, "Petit", "Jules")
    struck = _open(node, HEAD, "Vidal", "Paul", status="STRUCK_OFF")
    candidate = _open(node, HEAD, "Noel", "Ines", role="ADMIN", status="CANDIDATE")
    without = _open(node, HEAD, "Lucas", "Emma")
    for person in (owner, struck, candidate):
        _question(node, person, "FIRST_CAR", "Clio")
    cases = {
        "unknown": (Person(HEAD, "Inconnu", "Personne"), "Clio"),
        "struck off, right answer": (struck, "Clio"),
        "candidate, right answer": (candidate, "Clio"),
        "no question": (without, "Clio"),
        "wrong answer": (owner, "Twingo"),
    }
    outcomes = {
        case: _outcome(raw.AnswerSecretQuestion, pb.AnswerSecretQuestionRequest(
            identity=person.identity(), answer=answer, new_password=NEW_PASSWORD))
        for case, (person, answer) in cases.items()
    }  # fmt: skip
    assert len(set(outcomes.values())) == 1, outcomes
    refused = outcomes["unknown"]
    assert refused[0] == "UNAUTHENTICATED" and _info(refused).reason == "INVALID_CREDENTIALS"
    for person in (struck, candidate, without):
        assert not _signs_in(node, person, NEW_PASSWORD)

    # A triplet without a question is shown one of the list, the same every time, and the same
    # before and after an account has it.
    newcomer = Person(HEAD, "Nouveau", "Venu")

    def shown() -> pb.GetSecretQuestionResponse:
        return raw.GetSecretQuestion(pb.GetSecretQuestionRequest(identity=newcomer.identity()))

    before = shown()
    assert before == shown()
    assert SECRET_QUESTIONS[pb.SecretQuestion.Name(before.question)[16:]] == before.text
    _open(node, newcomer.siret, newcomer.last, newcomer.first)
    assert shown() == before
    decoys = {raw.GetSecretQuestion(pb.GetSecretQuestionRequest(identity=Person(
        HEAD, "Inconnu", f"Numero {n}").identity())).question for n in range(24)}  # fmt: skip
    assert len(decoys) > 2  # drawn from the whole list, not one tell-tale question


# -- 2. a code by e-mail -------------------------------------------------------------------


def test_a_code_by_email_resets_the_password_once(
    node: RunningNode,
    raw: account_pb2_grpc.AccountServiceStub,
    anonymous: Client,
    mailbox: Mailbox,
    sealer: AESGCM,
) -> None:
    lea = _open(node, HEAD, "Blanc", "Léa", email="lea.blanc@example.test", sealer=sealer)
    quiet = [
        Person(HEAD, "Inconnu", "Personne"),
        _open(node, HEAD, "Roux", "Marc", status="STRUCK_OFF", email="marc@example.test",
              sealer=sealer),
        _open(node, HEAD, "Fabre", "Nina", email="nina@example.test", confirmed=False,
              sealer=sealer),
        _open(node, HEAD, "Gauthier", "Lou"),
    ]  # fmt: skip
    with _session(node, lea) as session:
        answers = {
            _outcome(raw.RequestPasswordReset,
                     pb.RequestPasswordResetRequest(identity=person.identity()))
            for person in [*quiet, lea]
        }  # fmt: skip
        assert answers == {("OK", b"")}
        _settled(node)
        for person in quiet[1:]:  # nothing written nor sent for them
            assert _column(node, person, "reset_hash") is None
        assert not mailbox.to("marc@example.test") and not mailbox.to("nina@example.test")
        [mail] = mailbox.to("lea.blanc@example.test")
        assert mail["Subject"] == "Réinitialisation de votre mot de passe InterOPS"
        text = mail.get_content()
        found = CODE_IN_MAIL.search(text)
        assert found is not None
        code = found.group(1)
        for personal in ("Blanc", "Léa", HEAD, COMPANY):
            assert personal not in text
        # The code works for its account only, typed in any case and spacing, and once.
        elsewhere = _outcome(raw.ResetPassword, pb.ResetPasswordRequest(
            identity=quiet[3].identity(), code=code, new_password=NEW_PASSWORD))  # fmt: skip
        assert elsewhere[0] == "UNAUTHENTICATED"
        reset = pb.ResetPasswordRequest(identity=lea.identity(),
                                        code=code.lower().replace("-", " "),
                                        new_password=NEW_PASSWORD)  # fmt: skip
        anonymous.reset_password(reset)
        with pytest.raises(Unauthenticated):
            anonymous.reset_password(reset)
        assert _column(node, lea, "reset_hash") is None
        _reset_done(node, lea, session)


def test_a_code_is_refused_alike_when_unknown_wrong_expired_or_spent(
    node: RunningNode, raw: account_pb2_grpc.AccountServiceStub
) -> None:
    holder, struck, lapsed, used = (
        _open(node, BRANCH, "Henry", "Alix"),
        _open(node, BRANCH, "Meyer", "Rose", status="STRUCK_OFF"),
        _open(node, BRANCH, "Perrin", "Noa"),
        _open(node, BRANCH, "Collet", "Sami"),
    )
    code = _pending(node, holder)
    struck_code = _pending(node, struck)
    lapsed_code = _pending(node, lapsed, lasting=-1)
    used_code = _pending(node, used)

    def reset(person: Person, given: str) -> tuple[str, bytes]:
        return _outcome(raw.ResetPassword, pb.ResetPasswordRequest(
            identity=person.identity(), code=given, new_password=NEW_PASSWORD))  # fmt: skip

    assert reset(used, used_code) == ("OK", b"")
    outcomes = {
        "unknown": reset(Person(BRANCH, "Inconnu", "Personne"), code),
        "struck off": reset(struck, struck_code),
        "wrong code": reset(holder, new_code()),
        "another account's code": reset(holder, lapsed_code),
        "expired": reset(lapsed, lapsed_code),
        "spent": reset(used, used_code),
    }
    assert len(set(outcomes.values())) == 1, outcomes
    assert _info(outcomes["unknown"]).reason == "INVALID_CREDENTIALS"
    assert not _signs_in(node, struck, NEW_PASSWORD) and not _signs_in(node, lapsed, NEW_PASSWORD)
    assert reset(holder, code) == ("OK", b"")
    assert _signs_in(node, holder, NEW_PASSWORD)


# -- 3. a code from an administrator of the same establishment -----------------------------


def test_an_administrator_of_the_same_establishment_hands_over_a_code(
    node: RunningNode,
    raw: account_pb2_grpc.AccountServiceStub,
    anonymous: Client,
    admins: dict[str, Person],
    mailbox: Mailbox,
    sealer: AESGCM,
) -> None:
    tom = _open(node, HEAD, "Faure", "Tom", email="tom@example.test", sealer=sealer)
    outsider = _open(node, ELSEWHERE, "Dumas", "Iris")
    asked = pb.IssueResetCodeRequest(account_id=tom.id)
    with _session(node, admins["branch"]) as branch:
        with pytest.raises(PermissionDenied) as not_here:
            branch.issue_reset_code(asked)
        assert not_here.value.reason == "NOT_YOUR_ESTABLISHMENT"
    with _session(node, admins["head"]) as head:
        with pytest.raises(NotFound) as other_company:
            head.issue_reset_code(pb.IssueResetCodeRequest(account_id=outsider.id))
        assert other_company.value.reason == "UNKNOWN_DECLARANT"
        issued = head.issue_reset_code(asked)
    assert 0 <= issued.expires - time.time() <= ADMIN_CODE_SECONDS
    with _session(node, tom) as session:
        with pytest.raises(PermissionDenied) as not_admin:
            session.issue_reset_code(pb.IssueResetCodeRequest(account_id=tom.id))
        assert not_admin.value.reason == "MISSING_GRANT"
        # A stranger's request by e-mail does not void the administrator's code.
        assert _outcome(raw.RequestPasswordReset, pb.RequestPasswordResetRequest(
            identity=tom.identity())) == ("OK", b"")  # fmt: skip
        _settled(node)
        assert not mailbox.to("tom@example.test")
        anonymous.reset_password(pb.ResetPasswordRequest(
            identity=tom.identity(), code=issued.code, new_password=NEW_PASSWORD))  # fmt: skip
        _reset_done(node, tom, session)
    acts = HabilitationStore(node.node.engine).acts(COMPANY)
    assert [(a.author, a.target) for a in acts if a.act == "ISSUE_RESET_CODE"] == [
        (f"declarant:{admins['head'].id}", f"account:{tom.id}")
    ]


# -- 4. a code by the support's postal letter ----------------------------------------------


def test_the_support_posts_a_code_to_the_establishment(
    node: RunningNode, anonymous: Client, sealer: AESGCM
) -> None:
    support = node.organism("SUPPORT", rights=("account.support",))
    with _stub(node, support) as desk, _stub(node, node.operator) as operator:
        _support_letters(node, anonymous, sealer, desk, operator)


def _support_letters(
    node: RunningNode,
    anonymous: Client,
    sealer: AESGCM,
    desk: account_pb2_grpc.AccountServiceStub,
    operator: account_pb2_grpc.AccountServiceStub,
) -> None:
    zoe = _open(node, BRANCH, "Lopez", "Zoé")
    struck = _open(node, BRANCH, "Giraud", "Max", status="STRUCK_OFF")
    letters = LetterStore(node.node.engine, sealer)

    def asked(person: Person, request_id: str = "") -> tuple[str, bytes]:
        return _outcome(desk.SupportPasswordReset, pb.SupportPasswordResetRequest(
            identity=person.identity(), request_id=request_id))  # fmt: skip

    answers = {asked(p) for p in (Person(BRANCH, "Inconnu", "Personne"), struck, zoe)}
    assert answers == {("OK", b"")}
    assert asked(zoe, "call-7") == asked(zoe, "call-7") == ("OK", b"")  # a retry: no 2nd letter
    posted = [one for one in letters.take_batch("lost-passwords") if one.siret == BRANCH]
    assert [one.kind for one in posted] == [LetterKind.PASSWORD_RESET] * 2
    codes = [found.group(1) for one in posted if (found := CODE_IN_LETTER.search(one.body))]
    assert len(codes) == 2 and f"compte n° {zoe.id}" in posted[0].body
    # Nothing but the mail room reads the letter: no notification, the row sealed.
    with node.node.engine.connect() as connection:
        assert not connection.execute(
            select(notifications.c.id).where(notifications.c.siren == COMPANY)
        ).first()
        sealed = connection.execute(select(postal_letters.c.body_sealed)).scalars().all()
    assert not any(code.encode() in bytes(body or b"") for body in sealed for code in codes)
    # The latest letter's code is the pending one.
    with _session(node, zoe) as session:
        stale = pb.ResetPasswordRequest(identity=zoe.identity(), code=codes[0],
                                        new_password=NEW_PASSWORD)  # fmt: skip
        with pytest.raises(Unauthenticated):
            anonymous.reset_password(stale)
        stale.code = codes[1]
        anonymous.reset_password(stale)
        _reset_done(node, zoe, session)
    acts = HabilitationStore(node.node.engine).acts(COMPANY)
    assert [(a.author, a.target) for a in acts if a.act == "SUPPORT_RESET"] == [
        ("organism:SUPPORT", f"account:{zoe.id}")
    ] * 2
    # An establishment the post cannot reach is told alike whether an account is there.
    nowhere = _open(node, NOT_IN_RCD, "Morel", "Jade")
    told = {asked(p) for p in (nowhere, Person(NOT_IN_RCD, "Inconnu", "Personne"))}
    assert len(told) == 1
    [(code, _)] = told
    assert code == "NOT_FOUND" and _info(told.pop()).reason == "UNKNOWN_ESTABLISHMENT"
    # Only the support's right may ask.
    no_right = _outcome(operator.SupportPasswordReset,
                        pb.SupportPasswordResetRequest(identity=zoe.identity()))  # fmt: skip
    assert (no_right[0], _info(no_right).reason) == ("PERMISSION_DENIED", "MISSING_GRANT")


@contextlib.contextmanager
def _stub(node: RunningNode, signer: Signer) -> Iterator[account_pb2_grpc.AccountServiceStub]:
    """The service's stub for an organism's calls (its chain for this service)."""
    credentials = node.credentials(signer, (ACCOUNTS,))
    with grpc.insecure_channel(node.address) as channel:
        intercepted = grpc.intercept_channel(channel, SyncCredentialsInterceptor(credentials))
        yield account_pb2_grpc.AccountServiceStub(intercepted)


# -- the sign-in limits --------------------------------------------------------------------


def test_the_shared_limit_stops_guessing_answers_and_codes(
    node: RunningNode, raw: account_pb2_grpc.AccountServiceStub
) -> None:
    owner = _open(node, BRANCH, "Marchand", "Leo")
    _question(node, owner, "FIRST_PET", "Rex")
    code = _pending(node, owner)
    password_hash = _column(node, owner, "password_hash")
    unknown = Person(BRANCH, "Inconnu", "Guetteur")
    waits = []
    for person, answer in ((owner, "Rex"), (unknown, "Rex")):
        prime(node.node.engine, person.siret, person.last, person.first)
        # A stranger's next guess is checked, and fails; then every door waits, the right
        # answer and the right code are not even checked.
        guess = pb.AnswerSecretQuestionRequest(identity=person.identity(), answer="Felix",
                                               new_password=NEW_PASSWORD)  # fmt: skip
        assert _outcome(raw.AnswerSecretQuestion, guess)[0] == "UNAUTHENTICATED"
        guess.answer = answer
        doors = [
            _outcome(raw.AnswerSecretQuestion, guess),
            _outcome(raw.ResetPassword, pb.ResetPasswordRequest(
                identity=person.identity(), code=code, new_password=NEW_PASSWORD)),
            _outcome(raw.GetSecretQuestion, pb.GetSecretQuestionRequest(
                identity=person.identity())),
            _outcome(raw.RequestPasswordReset, pb.RequestPasswordResetRequest(
                identity=person.identity())),
        ]  # fmt: skip
        for door in doors:
            info = _info(door)
            assert (door[0], info.reason) == ("RESOURCE_EXHAUSTED", "TOO_MANY_ATTEMPTS")
            waits.append(int(info.metadata["retry_after_seconds"]))
        with pytest.raises(ResourceExhausted):  # the sign-in door too: one limit
            node.sign_in(person.siret, person.last, person.first, PASSWORD, audience=[ACCOUNTS])
    assert all(0 < wait <= 16 for wait in waits)
    # Neither the right answer nor the right code was used.
    assert _column(node, owner, "password_hash") == password_hash
    assert _column(node, owner, "reset_hash") == code_digest(code)


def test_an_administrator_unlocks_an_account_strangers_keep_waiting(
    node: RunningNode, admins: dict[str, Person]
) -> None:
    hugo = _open(node, BRANCH, "Garnier", "Hugo", role="ADMIN")
    prime(node.node.engine, hugo.siret, hugo.last, hugo.first)
    assert not _signs_in(node, hugo, "a stranger's guess")
    with pytest.raises(ResourceExhausted) as waiting:
        node.sign_in(hugo.siret, hugo.last, hugo.first, PASSWORD, audience=[ACCOUNTS])
    assert waiting.value.reason == "TOO_MANY_ATTEMPTS"
    unlock = pb.UnlockAccountRequest(account_id=hugo.id)
    with _session(node, admins["elsewhere"]) as stranger:
        with pytest.raises(NotFound) as not_theirs:
            stranger.unlock_account(unlock)
        assert not_theirs.value.reason == "UNKNOWN_DECLARANT"
    declarant = _open(node, HEAD, "Simon", "Jean")
    with _session(node, declarant) as session, pytest.raises(PermissionDenied):
        session.unlock_account(unlock)
    with _session(node, admins["head"]) as head:  # another establishment, the same company
        head.unlock_account(unlock)
    assert _signs_in(node, hugo, PASSWORD)
    acts = HabilitationStore(node.node.engine).acts(COMPANY)
    assert (f"declarant:{admins['head'].id}", f"account:{hugo.id}") in [
        (a.author, a.target) for a in acts if a.act == "UNLOCK"
    ]
