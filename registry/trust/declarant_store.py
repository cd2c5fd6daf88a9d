"""Declarants of the portal and their sign-in: the triplet SIRET + last name + first name and a
password, with a lockout after repeated failures.

The names are kept only inside a digest of the normalized triplet (accents, case and spacing
do not matter), so the database holds no declarant's name.
"""

from __future__ import annotations

import enum
import hashlib
import time
import unicodedata
from collections.abc import Iterable

from interops.habilitation.v1 import habilitation_pb2
from sqlalchemy import Engine, insert, select, update

from registry.kernel.contract_enums import contract_value
from registry.trust.directory_store import read_grants
from registry.trust.passwords import check_password, dummy_hash, hash_password
from registry.trust.schema import declarant_grants, declarants
from token_suite.grants import Grants

MAX_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60


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
    """A refused sign-in; `reason` is INVALID_CREDENTIALS or ACCOUNT_LOCKED."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


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
    """The columns of a new account that sign-in reads: identity digest, SIRET, password hash,
    no failure yet."""
    return {"identity_digest": identity_digest(siret, last_name, first_name), "siret": siret,
            "password_hash": hash_password(password), "failed_attempts": 0,
            "locked_until": 0}  # fmt: skip


class DeclarantStore:
    """Creates declarants and signs them in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        siret: str,
        last_name: str,
        first_name: str,
        password: str,
        grants: Iterable[tuple[str, str | None]] = (),
    ) -> int:
        """A new declarant with the (right, SIREN or None) grants; returns its id."""
        with self.engine.begin() as connection:
            declarant_id = connection.execute(
                insert(declarants)
                .values(account_row(siret, last_name, first_name, password))
                .returning(declarants.c.id)
            ).scalar_one()
            rows = [{"declarant_id": declarant_id, "right_name": r, "siren": s} for r, s in grants]
            if rows:
                connection.execute(insert(declarant_grants), rows)
        return int(declarant_id)

    def siret_of(self, declarant_id: int) -> str | None:
        """The SIRET of the establishment the declarant's account belongs to (None: no such
        account)."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(declarants.c.siret).where(declarants.c.id == declarant_id)
            ).scalar()
        return None if found is None else str(found)

    def exists(self, siret: str, last_name: str, first_name: str) -> bool:
        """True when the triplet has an account."""
        digest = identity_digest(siret, last_name, first_name)
        with self.engine.connect() as connection:
            found = connection.execute(
                select(declarants.c.id).where(declarants.c.identity_digest == digest)
            ).first()
        return found is not None

    def sign_in(
        self, siret: str, last_name: str, first_name: str, password: str, now: float | None = None
    ) -> int:
        """The declarant's id; raises SignInRefused. The same answer for an unknown triplet and
        a wrong password, so that sign-in does not tell who has an account."""
        moment = int(time.time() if now is None else now)
        digest = identity_digest(siret, last_name, first_name)
        with self.engine.connect() as connection:
            row = connection.execute(
                select(declarants).where(declarants.c.identity_digest == digest)
            ).first()
        if row is None:
            check_password(password, dummy_hash())
            raise SignInRefused("INVALID_CREDENTIALS", "unknown account or wrong password")
        if (
            row.status != AccountStatus.ACTIVE
        ):  # a candidate administrator, or struck off: said only to
            if check_password(password, row.password_hash):  # whoever knows the password
                raise SignInRefused("ACCOUNT_INACTIVE", "this account is not active")
            raise SignInRefused("INVALID_CREDENTIALS", "unknown account or wrong password")
        if row.locked_until > moment:
            raise SignInRefused(
                "ACCOUNT_LOCKED", f"too many failed sign-ins; try again after {row.locked_until}"
            )
        if not check_password(password, row.password_hash):
            self._failed(row.id, moment)
            raise SignInRefused("INVALID_CREDENTIALS", "unknown account or wrong password")
        if row.failed_attempts:
            with self.engine.begin() as connection:
                connection.execute(
                    update(declarants).where(declarants.c.id == row.id)
                    .values(failed_attempts=0, locked_until=0)
                )  # fmt: skip
        return int(row.id)

    def _failed(self, declarant_id: int, moment: int) -> None:
        with self.engine.begin() as connection:
            failures = connection.execute(
                update(declarants)
                .where(declarants.c.id == declarant_id)
                .values(failed_attempts=declarants.c.failed_attempts + 1)
                .returning(declarants.c.failed_attempts)
            ).scalar_one()
            if failures >= MAX_FAILURES:
                connection.execute(
                    update(declarants).where(declarants.c.id == declarant_id)
                    .values(failed_attempts=0, locked_until=moment + LOCKOUT_SECONDS)
                )  # fmt: skip

    def grants_of(self, declarant_id: int) -> Grants:
        """The declarant's explicit grants (habilitation.declarant_rights adds the rest)."""
        return read_grants(self.engine, declarant_grants.c.declarant_id, declarant_id)
