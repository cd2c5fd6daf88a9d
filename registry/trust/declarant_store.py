"""Declarants of the portal and their sign-in: the triplet SIRET + last name + first name and a
password, within the sign-in limits shared by every door (registry/trust/sign_in_limits.py).

A sign-in tells a guesser nothing about who has an account: the limit is asked first, by the
identity's digest, whether an account has it or not; then exactly one scrypt check is made in
every case (against a dummy hash when there is no account), and an unknown identity, a wrong
password and an inactive account all get INVALID_CREDENTIALS; only whoever gives the right
password of an inactive account learns that it is inactive.

The names are kept only inside a digest of the normalized triplet (accents, case and spacing
do not matter), so the database holds no declarant's name.
"""

from __future__ import annotations

import enum
import hashlib
import math
import unicodedata
from collections.abc import Iterable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from interops.habilitation.v1 import habilitation_pb2
from sqlalchemy import Engine, insert, select, update

from registry.kernel.contract_enums import contract_value
from registry.kernel.database import reading
from registry.trust.account_seals import seal_names
from registry.trust.directory_store import read_grants
from registry.trust.passwords import check_password, dummy_hash, hash_password
from registry.trust.schema import declarant_grants, declarants
from registry.trust.sign_in_limits import SignInLimits
from token_suite.grants import Grants

INVALID_CREDENTIALS = "unknown account or wrong password"


class AccountStatus(enum.StrEnum):
    """Where an account stands (registry/habilitation/store.py moves accounts between them);
    stored as its name, sent as interops.habilitation.v1.AccountStatus."""

    ACTIVE = "ACTIVE"
    # A candidate administrator waiting for validation or its activation key.
    CANDIDATE = "CANDIDATE"
    STRUCK_OFF = "STRUCK_OFF"

    def to_proto(self) -> habilitation_pb2.AccountStatus.ValueType:
        """The contract's number for this status."""
        return contract_value(habilitation_pb2.AccountStatus, self.name)


class SignInRefused(Exception):
    """A refused sign-in; `reason` is INVALID_CREDENTIALS, TOO_MANY_ATTEMPTS (then
    `retry_after` says in how many whole seconds) or ACCOUNT_INACTIVE."""

    def __init__(self, reason: str, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


def too_many_attempts(wait: float) -> SignInRefused:
    """The refusal of an attempt the sign-in limits make wait `wait` seconds (any door's: its
    wording depends on the wait only)."""
    seconds = max(1, math.ceil(wait))
    return SignInRefused(
        "TOO_MANY_ATTEMPTS", f"too many sign-in attempts; retry in {seconds} s", seconds
    )


def _normalized(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.upper().replace("-", " ").split())


def identity_digest(siret: str, last_name: str, first_name: str) -> bytes:
    """The digest that stands for a declarant's triplet."""
    text = "\x00".join(("interops.declarant.v1", siret, _normalized(last_name),
                        _normalized(first_name)))  # fmt: skip
    return hashlib.sha256(text.encode()).digest()


def account_row(siret: str, last_name: str, first_name: str, password: str) -> dict[str, object]:
    """The columns of a new account that sign-in reads: identity digest, SIRET, password
    hash."""
    return {"identity_digest": identity_digest(siret, last_name, first_name), "siret": siret,
            "password_hash": hash_password(password)}  # fmt: skip


class DeclarantStore:
    """Creates declarants and signs them in."""

    def __init__(self, engine: Engine, limits: SignInLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or SignInLimits(engine)

    def create(
        self,
        siret: str,
        last_name: str,
        first_name: str,
        password: str,
        grants: Iterable[tuple[str, str | None]] = (),
        *,
        sealer: AESGCM | None = None,
    ) -> int:
        """A new declarant with the (right, SIREN or None) grants; returns its id. With the
        node's key (`sealer`), its names are kept sealed for its company's administrators."""
        with self.engine.begin() as connection:
            declarant_id = connection.execute(
                insert(declarants)
                .values(account_row(siret, last_name, first_name, password))
                .returning(declarants.c.id)
            ).scalar_one()
            if sealer is not None:
                connection.execute(
                    update(declarants).where(declarants.c.id == declarant_id)
                    .values(names_sealed=seal_names(sealer, declarant_id,
                                                    (last_name, first_name)))
                )  # fmt: skip
            rows = [{"declarant_id": declarant_id, "right_name": r, "siren": s} for r, s in grants]
            if rows:
                connection.execute(insert(declarant_grants), rows)
        return int(declarant_id)

    def siret_of(self, declarant_id: int) -> str | None:
        """The SIRET of the establishment the declarant's account belongs to (None: no such
        account)."""
        with reading(self.engine) as connection:
            found = connection.execute(
                select(declarants.c.siret).where(declarants.c.id == declarant_id)
            ).scalar()
        return None if found is None else str(found)

    def exists(self, siret: str, last_name: str, first_name: str) -> bool:
        """True when the triplet has an account."""
        digest = identity_digest(siret, last_name, first_name)
        with reading(self.engine) as connection:
            found = connection.execute(
                select(declarants.c.id).where(declarants.c.identity_digest == digest)
            ).first()
        return found is not None

    def sign_in(
        self,
        siret: str,
        last_name: str,
        first_name: str,
        password: str,
        *,
        source: str,
        now: float | None = None,
    ) -> int:
        """The declarant's id, for an attempt from `source` (the client's address); raises
        SignInRefused, with the same answer for an unknown triplet, a wrong password and an
        inactive account, so that sign-in does not tell who has an account."""
        digest = identity_digest(siret, last_name, first_name)
        wait = self.limits.admit(digest, source, now)
        if wait:
            raise too_many_attempts(wait)
        with reading(self.engine) as connection:
            row = connection.execute(
                select(declarants.c.id, declarants.c.password_hash, declarants.c.status)
                .where(declarants.c.identity_digest == digest)
            ).first()  # fmt: skip
        # The one scrypt check of every case, against a hash of the same cost when no account.
        right = check_password(password, dummy_hash() if row is None else row.password_hash)
        if row is None or not right:
            raise SignInRefused("INVALID_CREDENTIALS", INVALID_CREDENTIALS)
        self.limits.succeeded(digest, source)
        if row.status != AccountStatus.ACTIVE:  # a candidate administrator, or struck off
            raise SignInRefused("ACCOUNT_INACTIVE", "this account is not active")
        return int(row.id)

    def grants_of(self, declarant_id: int) -> Grants:
        """The declarant's explicit grants (habilitation.declarant_rights adds the rest)."""
        return read_grants(self.engine, declarant_grants.c.declarant_id, declarant_id)
