"""Lost passwords (mot de passe perdu): the portal's four ways back into an account, none of
which tells whether an account exists.

1. Its secret question, at once and alone: one of SECRET_QUESTIONS, the answer kept as the
   scrypt hash of its normalized form (case, accents and spacing set aside).
2. A one-time code sent to its confirmed e-mail address (valid EMAIL_CODE_SECONDS).
3. A one-time code an active administrator of the same establishment (same SIRET) hands over in
   person (valid ADMIN_CODE_SECONDS).
4. A one-time code the user support posts to the establishment's address in the RCD (valid
   LETTER_CODE_SECONDS; registry/letters).

What a stranger may call (by the triplet) goes through the sign-in limits of the identity and of
the source first, as a sign-in does (registry/trust/sign_in_limits.py), then makes exactly one
scrypt check, against a dummy hash when there is nothing to check against, and fails with one
refusal (Refused("INVALID_CREDENTIALS", REFUSED)) for an unknown triplet, an account that is not
active, one without a question, a wrong answer or code; a success also hashes the new password.
A triplet without a question is shown a decoy: a question of the list chosen by an HMAC of its
identity digest under the node's key, so the same one every time, and as likely as a chosen one.

A code is 100 random bits in Crockford's base 32 (typed from a letter: no I, L, O nor U; case,
spaces and dashes do not matter), kept as its SHA-256 only (`declarants.reset_hash`); an
account has one pending at most. An administrator's or the support's code replaces it; an
e-mailed one only when it outlives it, so that a stranger's requests cannot void a code an
administrator or a letter gave. A reset sets the new password, spends the code, clears the
identity's sign-in limit and cuts the account's live chains in its transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from registry.habilitation.schema import admin_acts
from registry.habilitation.store import Role
from registry.kernel.clock import now_ms
from registry.kernel.database import reading
from registry.letters.store import LetterStore
from registry.trust.account_seals import open_email
from registry.trust.declarant_store import AccountStatus, identity_digest, too_many_attempts
from registry.trust.issuance import declarant_subject
from registry.trust.passwords import check_password, dummy_hash, hash_password
from registry.trust.revocation_store import cut_off
from registry.trust.schema import declarants
from registry.trust.sign_in_limits import SignInLimits

# The questions an account may choose, by their name in the contract (SecretQuestion without
# its prefix), as the portal shows them; decoys are drawn from the same list.
SECRET_QUESTIONS: dict[str, str] = {
    "FIRST_PET": "Quel est le nom de votre premier animal de compagnie ?",
    "PARENTS_TOWN": "Dans quelle ville vos parents se sont-ils rencontrés ?",
    "CHILDHOOD_FRIEND": "Quel est le prénom de votre meilleur ami d'enfance ?",
    "FIRST_SCHOOL": "Quel est le nom de votre première école ?",
    "FIRST_CAR": "Quelle était la marque de votre première voiture ?",
    "FAVOURITE_BOOK": "Quel est le titre de votre livre préféré ?",
    "FIRST_EMPLOYER": "Quel est le nom de votre premier employeur ?",
    "CHILDHOOD_STREET": "Dans quelle rue habitiez-vous à dix ans ?",
}
MIN_ANSWER = 3
EMAIL_CODE_SECONDS = 3600
ADMIN_CODE_SECONDS = 24 * 3600
LETTER_CODE_SECONDS = 30 * 24 * 3600
REFUSED = "unknown account, no such way back, or a wrong answer or code"
# Crockford's base 32: 20 characters are 100 bits.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_CHARACTERS = 20
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", " ": None, "-": None})
_SUPPORT_REQUEST = "support:"


class Refused(Exception):
    """A refused recovery step; `reason` is a stable code (INVALID_CREDENTIALS,
    TOO_MANY_ATTEMPTS with `retry_after` seconds, NOT_AN_ADMINISTRATOR, UNKNOWN_DECLARANT,
    NOT_YOUR_ESTABLISHMENT, ACCOUNT_INACTIVE, INVALID_ARGUMENT), `message` says why."""

    def __init__(self, reason: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class EmailedCode:
    """A code to send to an account's address, and when it expires (Unix seconds)."""

    address: str
    code: str
    expires: int


def normalized_answer(answer: str) -> str:
    """The answer as it is compared: without accents, case or extra spacing."""
    decomposed = unicodedata.normalize("NFKD", answer)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.casefold().split())


def new_code() -> str:
    """A fresh one-time code: 100 random bits, in four groups of five characters."""
    text = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_CHARACTERS))
    return "-".join(text[i : i + 5] for i in range(0, _CODE_CHARACTERS, 5))


def code_digest(code: str) -> bytes:
    """What is kept of a code: the SHA-256 of its normalized form."""
    normalized = code.upper().translate(_READ_AS)
    return hashlib.sha256(b"interops.password-reset.v1\0" + normalized.encode()).digest()


def decoy_key(data_key: bytes) -> bytes:
    """The key decoy questions are chosen with, derived from the node's at-rest key (shared by
    every node of a deployment, so that each shows the same decoy)."""
    return hmac.new(data_key, b"interops.decoy-question.v1", hashlib.sha256).digest()


def _refused() -> Refused:
    return Refused("INVALID_CREDENTIALS", REFUSED)


def _waited(wait: float) -> Refused:
    refusal = too_many_attempts(wait)
    return Refused(refusal.reason, refusal.message, refusal.retry_after)


_ACCOUNT = (declarants.c.id, declarants.c.siret, declarants.c.role, declarants.c.status,
            declarants.c.identity_digest)  # fmt: skip


class AccountRecovery:
    """The rules of lost passwords over the node's database (synchronous: services run them in
    a thread)."""

    def __init__(
        self,
        engine: Engine,
        limits: SignInLimits,
        *,
        sealer: AESGCM,
        decoys: bytes,
        letters: LetterStore | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits
        # The node's at-rest key: e-mail addresses are sealed with it.
        self.sealer = sealer
        self.decoys = decoys
        self.letters = letters or LetterStore(engine, sealer)

    # -- the secret question ---------------------------------------------------------------

    def set_secret_question(
        self, account_id: int, password: str, question: str, answer: str, *, source: str
    ) -> None:
        """Sets the account's question and answer, given its current password (a check that
        counts against its sign-in limit)."""
        if question not in SECRET_QUESTIONS:
            raise Refused("INVALID_ARGUMENT", "no such secret question")
        kept = normalized_answer(answer)
        if sum(c.isalnum() for c in kept) < MIN_ANSWER:
            raise Refused(
                "INVALID_ARGUMENT", f"an answer has at least {MIN_ANSWER} letters or digits"
            )
        with reading(self.engine) as connection:
            row = connection.execute(
                select(declarants.c.identity_digest, declarants.c.password_hash,
                       declarants.c.status).where(declarants.c.id == account_id)
            ).first()  # fmt: skip
        if row is None or row.status != AccountStatus.ACTIVE:
            raise Refused("ACCOUNT_INACTIVE", "this account is not active")
        digest = bytes(row.identity_digest)
        if wait := self.limits.admit(digest, source):
            raise _waited(wait)
        if not check_password(password, row.password_hash):
            raise Refused("INVALID_CREDENTIALS", "wrong password")
        answer_hash = hash_password(kept)
        with self.engine.begin() as connection:
            connection.execute(
                update(declarants).where(declarants.c.id == account_id)
                .values(secret_question=question, secret_answer_hash=answer_hash)
            )  # fmt: skip
        self.limits.succeeded(digest, source)

    def question_of(self, siret: str, last_name: str, first_name: str, *, source: str) -> str:
        """The name of the triplet's secret question, or of its decoy."""
        digest = self._admitted(siret, last_name, first_name, source)
        with reading(self.engine) as connection:
            chosen = connection.execute(
                select(declarants.c.secret_question)
                .where(declarants.c.identity_digest == digest)
            ).scalar()  # fmt: skip
        check_password("", dummy_hash())  # as every door: one scrypt, whatever the case
        if chosen in SECRET_QUESTIONS:
            return str(chosen)
        return self._decoy(digest)

    def _decoy(self, digest: bytes) -> str:
        names = list(SECRET_QUESTIONS)
        chosen = hmac.new(self.decoys, digest, hashlib.sha256).digest()
        return names[int.from_bytes(chosen[:8], "big") % len(names)]

    def answer_secret_question(
        self,
        siret: str,
        last_name: str,
        first_name: str,
        answer: str,
        new_password: str,
        *,
        source: str,
    ) -> int:
        """Sets the new password when the answer is right; the account's id."""
        digest = self._admitted(siret, last_name, first_name, source)
        with reading(self.engine) as connection:
            row = connection.execute(
                select(declarants.c.id, declarants.c.status, declarants.c.secret_answer_hash)
                .where(declarants.c.identity_digest == digest)
            ).first()  # fmt: skip
        stored = row.secret_answer_hash if row is not None and row.secret_answer_hash else ""
        right = check_password(normalized_answer(answer), stored or dummy_hash())
        if row is None or not stored or not right or row.status != AccountStatus.ACTIVE:
            raise _refused()
        self._reset(row.id, hash_password(new_password))
        self.limits.succeeded(digest, source)
        return int(row.id)

    # -- one-time codes --------------------------------------------------------------------

    def admit_email_request(
        self, siret: str, last_name: str, first_name: str, *, source: str
    ) -> bytes:
        """Counts a request for an e-mailed code against the limits; the identity's digest, for
        `email_code` to be called off the answer's path."""
        digest = self._admitted(siret, last_name, first_name, source)
        check_password("", dummy_hash())  # as every door: one scrypt, whatever the case
        return digest

    def email_code(self, digest: bytes, now: float | None = None) -> EmailedCode | None:
        """A new code for the identity's account and the address to send it to, when the
        account is active with a confirmed address and has no pending code that outlives an
        e-mailed one; None otherwise."""
        moment = int(time.time() if now is None else now)
        expires = moment + EMAIL_CODE_SECONDS
        with self.engine.begin() as connection:
            row = connection.execute(
                select(declarants.c.id, declarants.c.status, declarants.c.email_sealed,
                       declarants.c.email_verified, declarants.c.reset_hash,
                       declarants.c.reset_expires)
                .where(declarants.c.identity_digest == digest)
            ).first()  # fmt: skip
            if (
                row is None
                or row.status != AccountStatus.ACTIVE
                or row.email_sealed is None
                or not row.email_verified
                or (row.reset_hash is not None and row.reset_expires > expires)
            ):
                return None
            try:
                address = open_email(self.sealer, row.id, bytes(row.email_sealed))
            except InvalidTag:  # altered, moved or sealed with another key: nobody to send to
                return None
            code = new_code()
            self._pending(connection, row.id, code, expires)
        return EmailedCode(address, code, expires)

    def reset_password(
        self,
        siret: str,
        last_name: str,
        first_name: str,
        code: str,
        new_password: str,
        *,
        source: str,
        now: float | None = None,
    ) -> int:
        """Sets the new password with the account's pending code, which it spends; the
        account's id."""
        digest = self._admitted(siret, last_name, first_name, source)
        moment = time.time() if now is None else now
        given = code_digest(code)
        with reading(self.engine) as connection:
            row = connection.execute(
                select(declarants.c.id, declarants.c.status, declarants.c.reset_hash,
                       declarants.c.reset_expires)
                .where(declarants.c.identity_digest == digest)
            ).first()  # fmt: skip
        pending = bytes(row.reset_hash) if row is not None and row.reset_hash else b""
        valid = (
            row is not None
            and hmac.compare_digest(pending or bytes(32), given)
            and bool(pending)
            and row.reset_expires > moment
            and row.status == AccountStatus.ACTIVE
        )
        if not valid:
            check_password(new_password, dummy_hash())  # the one scrypt of a refusal
            raise _refused()
        assert row is not None
        # Spent in the reset's statement: of two uses at once, one only finds it.
        if not self._reset(row.id, hash_password(new_password), spending=given):
            raise _refused()
        self.limits.succeeded(digest, source)
        return int(row.id)

    def issue_code(
        self, author_id: int, account_id: int, now: float | None = None
    ) -> tuple[str, int]:
        """A code for an active account of the author's establishment, to hand over in person,
        and when it expires (Unix seconds); the author is an active administrator."""
        expires = int(time.time() if now is None else now) + ADMIN_CODE_SECONDS
        code = new_code()
        with self.engine.begin() as connection:
            author = self._administrator(connection, author_id)
            target = self._member(connection, author, account_id)
            if target.siret != author.siret:
                raise Refused(
                    "NOT_YOUR_ESTABLISHMENT",
                    f"account {account_id} is of another establishment than {author.siret}: "
                    "only an administrator of its own establishment gives it a code",
                )
            if not target.active:
                raise Refused("ACCOUNT_INACTIVE", f"account {account_id} is not active")
            self._pending(connection, account_id, code, expires)
            _act(connection, author.siret[:9], declarant_subject(author_id), "ISSUE_RESET_CODE",
                 f"account:{account_id}")  # fmt: skip
        return code, expires

    def support_reset(
        self,
        siret: str,
        last_name: str,
        first_name: str,
        *,
        author: str,
        request_id: str = "",
        now: float | None = None,
    ) -> None:
        """Posts a code to the establishment for the triplet's account if it is active. The
        letter is written in every case, and kept only when it goes to an account, so that the
        establishment's refusals (registry/letters: unknown, ceased, no postal address) are
        told alike whether an account exists. A retry with the same request id does nothing."""
        siren = siret[:9]
        retry_key = _SUPPORT_REQUEST + request_id if request_id else None
        if retry_key is not None and self._supported(siren, retry_key):
            return
        digest = identity_digest(siret, last_name, first_name)
        expires = int(time.time() if now is None else now) + LETTER_CODE_SECONDS
        code = new_code()
        try:
            with self.engine.begin() as connection:
                row = connection.execute(
                    select(declarants.c.id, declarants.c.status)
                    .where(declarants.c.identity_digest == digest)
                ).first()  # fmt: skip
                kept = row is not None and row.status == AccountStatus.ACTIVE
                account = str(row.id) if row is not None and kept else "0"
                values = {"account": account, "code": code}
                letter = self.letters.post("PASSWORD_RESET", siret, values, connection)
                if row is None or not kept:
                    raise _NoAccount
                self._pending(connection, row.id, code, expires)
                _act(connection, siren, author, "SUPPORT_RESET", f"account:{row.id}",
                     detail=f"letter:{letter}", request_id=retry_key)  # fmt: skip
        except _NoAccount:
            return
        except IntegrityError:  # the same request id, sent twice at once: one letter
            return

    def _supported(self, siren: str, retry_key: str) -> bool:
        with reading(self.engine) as connection:
            return connection.execute(
                select(admin_acts.c.id).where(admin_acts.c.siren == siren,
                                              admin_acts.c.request_id == retry_key)
            ).first() is not None  # fmt: skip

    # -- administrators --------------------------------------------------------------------

    def administrators_company(self, author_id: int) -> str:
        """The SIREN of the author's company, if the author is an active administrator now."""
        with reading(self.engine) as connection:
            return self._administrator(connection, author_id).siret[:9]

    # -- unlocking -------------------------------------------------------------------------

    def unlock(self, author_id: int, account_id: int) -> None:
        """Clears the sign-in limit of an account of the author's company; the author is an
        active administrator."""
        with self.engine.begin() as connection:
            author = self._administrator(connection, author_id)
            target = self._member(connection, author, account_id)
            _act(connection, author.siret[:9], declarant_subject(author_id), "UNLOCK",
                 f"account:{account_id}")  # fmt: skip
        self.limits.clear(target.digest)

    # -- shared steps ----------------------------------------------------------------------

    def _admitted(self, siret: str, last_name: str, first_name: str, source: str) -> bytes:
        """The identity's digest, once the limits admit an attempt on it from `source`."""
        digest = identity_digest(siret, last_name, first_name)
        if wait := self.limits.admit(digest, source):
            raise _waited(wait)
        return digest

    @staticmethod
    def _pending(connection: Connection, account_id: int, code: str, expires: int) -> None:
        connection.execute(
            update(declarants).where(declarants.c.id == account_id)
            .values(reset_hash=code_digest(code), reset_expires=expires)
        )  # fmt: skip

    def _reset(self, account_id: int, password_hash: str, spending: bytes | None = None) -> bool:
        """Sets the password, spends any pending code (when `spending`, only if that code is
        still pending) and cuts the account's live chains; False when the code was spent
        meanwhile."""
        with self.engine.begin() as connection:
            statement = update(declarants).where(declarants.c.id == account_id)
            if spending is not None:
                statement = statement.where(declarants.c.reset_hash == spending)
            done = connection.execute(
                statement.values(password_hash=password_hash, reset_hash=None, reset_expires=0)
            ).rowcount
            if done:
                cut_off(connection, [declarant_subject(account_id)])
        return bool(done)

    @staticmethod
    def _administrator(connection: Connection, author_id: int) -> _Account:
        author = _account(connection, author_id)
        if author is None or author.role != Role.ADMINISTRATOR or not author.active:
            raise Refused(
                "NOT_AN_ADMINISTRATOR", "only an active administrator of the company may do this"
            )
        return author

    @staticmethod
    def _member(connection: Connection, author: _Account, account_id: int) -> _Account:
        target = _account(connection, account_id)
        if target is None or target.siret[:9] != author.siret[:9]:
            raise Refused(
                "UNKNOWN_DECLARANT", f"no account {account_id} in company {author.siret[:9]}"
            )
        return target


class _NoAccount(Exception):
    """Undoes a support letter written for no account."""


@dataclass(frozen=True, slots=True)
class _Account:
    id: int
    siret: str
    role: str
    active: bool
    digest: bytes

    @staticmethod
    def of(row: Row[Any, Any, Any, Any, Any]) -> _Account:
        return _Account(row.id, row.siret, row.role, row.status == AccountStatus.ACTIVE,
                        bytes(row.identity_digest))  # fmt: skip


def _account(connection: Connection, account_id: int) -> _Account | None:
    row = connection.execute(select(*_ACCOUNT).where(declarants.c.id == account_id)).first()
    return None if row is None else _Account.of(row)


def _act(
    connection: Connection,
    siren: str,
    author: str,
    act: str,
    target: str,
    *,
    detail: str = "",
    request_id: str | None = None,
) -> None:
    """Records an administrative act in the caller's transaction (registry/habilitation/store.py
    lists them to the company's administrators)."""
    connection.execute(
        insert(admin_acts).values(siren=siren, author=author[:64], act=act, target=target,
                                  detail=detail, at=now_ms(), request_id=request_id)
    )  # fmt: skip
