"""Administrators, declarants, portfolios and habilitations of a company, every administrative
act recorded with its author.

A company (SIREN) is registered by its first administrator (Primo AD); later administrators
apply (Candidat AD). Either is a CANDIDATE with no rights until its registration is proven (the
key of a postal letter posted to the establishment's address in the RCD, registry/letters/, or,
for a candidate, an active administrator's validation) and its e-mail confirmed (the code sent
there); then it is ACTIVE. `register` answers the caller nothing that tells whether the triplet
had an account. Only an active administrator creates declarants,
strikes them off (optionally handing their habilitations to a successor), manages portfolios
and grants habilitations; a habilitation needs the establishment in one of the company's
portfolios to which the service was added.

A portfolio holds only establishments the company may hold (registry/habilitation/managed.py):
its own, those it declares in DSN while the link lasts, and those whose company gave it an
explicit mandate (`grant_mandate`, by that company's administrator). A habilitation is granted
only on those, and a mandate's end cuts the live chains of the firm's accounts at once.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from interops.habilitation.v1 import habilitation_pb2
from sqlalchemy import Connection, Engine, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from registry.habilitation.declarative_services import MANDATED, SERVICES
from registry.habilitation.managed import mandated_among, may_hold
from registry.habilitation.schema import (
    admin_acts,
    firm_mandates,
    habilitations,
    portfolio_establishments,
    portfolio_services,
    portfolios,
)
from registry.kernel.clock import now_ms
from registry.kernel.contract_enums import contract_value
from registry.kernel.database import reading
from registry.letters.store import LetterStore
from registry.rcd.schema import establishments
from registry.relations.store import IDLE_MONTHS, end_mandated_links, live_since
from registry.trust.account_seals import open_email, open_names, seal_email, seal_names
from registry.trust.declarant_store import AccountStatus, account_row
from registry.trust.issuance import declarant_subject
from registry.trust.passwords import check_password, dummy_hash
from registry.trust.revocation_store import cut_off
from registry.trust.schema import declarant_grants, declarants


class Role(enum.StrEnum):
    """What an account does for its company; stored as its value, sent as
    interops.habilitation.v1.Role."""

    ADMINISTRATOR = "ADMIN"
    DECLARANT = "DECLARANT"

    def to_proto(self) -> habilitation_pb2.Role.ValueType:
        """The contract's number for this role."""
        return contract_value(habilitation_pb2.Role, self.name)


class PortfolioKind(enum.StrEnum):
    """The company's own portfolio (one, made at registration) or one of client companies;
    stored as its value, sent as interops.habilitation.v1.PortfolioKind."""

    COMPANY = "COMPANY"
    CLIENTS = "CLIENTS"

    def to_proto(self) -> habilitation_pb2.PortfolioKind.ValueType:
        """The contract's number for this kind."""
        return contract_value(habilitation_pb2.PortfolioKind, self.name)


# Above this many establishments a portfolio gets hard to manage (the portal's advice).
PORTFOLIO_ADVICE = 100
# An unproven candidate's e-mail code and letter key last this long after its registration.
PENDING_DAYS = 30
# Activation letters that may wait for the mail room per establishment, and their kinds (first
# administrator, candidate).
PENDING_LETTERS = 3
ACTIVATION_LETTERS = ("ADMIN_ACTIVATION", "CANDIDATE_ACTIVATION")
log = logging.getLogger(__name__)


class HabilitationRefused(Exception):
    """An act that may not be done; `reason` is a stable code, `message` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the habilitation rules see it."""

    id: int
    siret: str
    role: Role
    status: AccountStatus
    # (last name, first name) as typed at creation, for its company's administrators; empty
    # for accounts made before names were kept, or where no sealing key was given.
    names: tuple[str, str] | tuple[()] = ()

    @property
    def siren(self) -> str:
        """The account's company."""
        return self.siret[:9]


@dataclass(frozen=True, slots=True)
class Portfolio:
    """A portfolio: its establishments and the services added to it."""

    name: str
    kind: PortfolioKind
    sirets: list[str]
    services: list[str]


@dataclass(frozen=True, slots=True)
class AdminAct:
    """An administrative act and its author."""

    id: int
    author: str
    act: str
    target: str
    detail: str
    at: int


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration answered: the account, the code for the e-mail given (to send there,
    whatever the case), and whether it is its company's first administrator."""

    account: int
    email_code: str
    first: bool


@dataclass(frozen=True, slots=True)
class FirmMandate:
    """A company's mandate to a firm for one of its establishments; `ended_at` 0 while it lasts."""

    client_siret: str
    firm_siren: str
    granted_at: int
    ended_at: int


@dataclass(frozen=True, slots=True)
class Habilitation:
    """A declarant's right to use a service for an establishment."""

    declarant_id: int
    siret: str
    service: str


def _account(row: Any) -> Account:
    return Account(row.id, row.siret, Role(row.role), AccountStatus(row.status))


def _active_administrators(connection: Connection, siren: str) -> int:
    """How many active administrators the company has."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(declarants)
            .where(
                declarants.c.siret.startswith(siren),
                declarants.c.role == Role.ADMINISTRATOR,
                declarants.c.status == AccountStatus.ACTIVE,
            )
        ).scalar()
        or 0
    )


def _key_hash(key: str) -> bytes:
    return hashlib.sha256(b"interops.activation.v1\0" + key.encode()).digest()


class HabilitationStore:
    """Every act checks its author and is recorded in admin_acts in the same transaction."""

    def __init__(
        self, engine: Engine, idle_months: int = IDLE_MONTHS, sealer: AESGCM | None = None
    ) -> None:
        self.engine = engine
        self.idle_months = idle_months
        # The node's at-rest key: e-mail addresses and letters are sealed with it.
        self.sealer = sealer

    def _may_hold(self, connection: Connection, author: Account, sirets: tuple[str, ...]) -> None:
        """Refuses establishments the author's company neither owns nor manages now."""
        allowed = set(may_hold(connection, author.siren, sirets, live_since(self.idle_months)))
        outside = [s for s in sirets if s not in allowed]
        if outside:
            raise HabilitationRefused(
                "NOT_MANAGED",
                f"{outside[0]} is not an establishment of {author.siren}, nor one it declares "
                "in DSN or holds a mandate for",
            )

    # -- accounts --------------------------------------------------------------------------

    def account(self, account_id: int, connection: Connection | None = None) -> Account | None:
        """The account, or None."""
        query = select(
            declarants.c.id, declarants.c.siret, declarants.c.role, declarants.c.status
        ).where(declarants.c.id == account_id)
        if connection is not None:
            row = connection.execute(query).first()
        else:
            with reading(self.engine) as own:
                row = own.execute(query).first()
        return _account(row) if row is not None else None

    def administrator(self, account_id: int) -> Account:
        """The account if it is an active administrator now; refuses any other."""
        with reading(self.engine) as connection:
            return self._admin(connection, account_id)

    def _admin(self, connection: Connection, author_id: int) -> Account:
        author = self.account(author_id, connection)
        if (
            author is None
            or author.role != Role.ADMINISTRATOR
            or author.status != AccountStatus.ACTIVE
        ):
            raise HabilitationRefused(
                "NOT_AN_ADMINISTRATOR", "only an active administrator of the company may do this"
            )
        return author

    def _member(self, connection: Connection, author: Account, account_id: int) -> Account:
        account = self.account(account_id, connection)
        if account is None or account.siren != author.siren:
            raise HabilitationRefused(
                "UNKNOWN_DECLARANT", f"no account {account_id} in company {author.siren}"
            )
        return account

    def _act(
        self,
        connection: Connection,
        siren: str,
        author: str,
        act: str,
        target: str,
        *,
        detail: str = "",
        request_id: str = "",
    ) -> None:
        try:
            connection.execute(
                insert(admin_acts).values(
                    siren=siren,
                    author=author,
                    act=act,
                    target=target[:64],
                    detail=detail[:500],
                    at=now_ms(),
                    request_id=request_id or None,
                )
            )
        except IntegrityError:  # the unique (siren, request_id): the whole act rolls back
            raise HabilitationRefused(
                "REQUEST_ID_REUSED",
                "this request id was used for another act of the company, or by a retry "
                "running at the same time",
            ) from None

    def replayed(
        self, siren: str, act: str, request_id: str, connection: Connection | None = None
    ) -> str | None:
        """The target of the company's act of this kind made with this request id, or None:
        a retried creation answers with what the first one made."""
        if not request_id:
            return None
        query = select(admin_acts.c.target).where(
            admin_acts.c.siren == siren,
            admin_acts.c.request_id == request_id,
            admin_acts.c.act == act,
        )
        if connection is not None:
            found = connection.execute(query).scalar()
        else:
            with reading(self.engine) as own:
                found = own.execute(query).scalar()
        return None if found is None else str(found)

    def _account_replayed(self, siren: str, act: str, request_id: str) -> int | None:
        target = self.replayed(siren, act, request_id)
        return None if target is None else int(target.removeprefix("account:"))

    def _registered(self, connection: Connection, sirets: tuple[str, ...]) -> None:
        """Refuses establishments that are not in the registry (RCD)."""
        known = set(
            connection.execute(
                select(establishments.c.siret).where(establishments.c.siret.in_(sirets))
            ).scalars()
        )
        unknown = [s for s in sirets if s not in known]
        if unknown:
            raise HabilitationRefused(
                "UNKNOWN_SIRET", f"{unknown[0]} is not an establishment of the registry"
            )

    def _new_account(
        self,
        connection: Connection,
        row: Mapping[str, object],
        *,
        role: str,
        status: str,
        activation_hash: bytes | None = None,
    ) -> int:
        """A new account from its sign-in columns (`account_row`)."""
        try:
            return int(
                connection.execute(
                    insert(declarants)
                    .values(
                        {
                            **row,
                            "role": role,
                            "status": status,
                            "activation_hash": activation_hash,
                        }
                    )
                    .returning(declarants.c.id)
                ).scalar_one()
            )
        except IntegrityError:
            raise HabilitationRefused(
                "ACCOUNT_EXISTS", "an account with this SIRET and name exists"
            ) from None

    def register_company(
        self, siret: str, names: tuple[str, str], password: str, request_id: str = ""
    ) -> int:
        """The Primo AD of a company with no administrator yet, active at once: out of band,
        by the backbone's operators (demo data, tests, accounts proven elsewhere); no call
        reaches it (a registration by call is proven by letter: `register`). Its company
        portfolio holds the registering establishment, which must be in the registry."""
        siren = siret[:9]
        if (replay := self._account_replayed(siren, "REGISTER", request_id)) is not None:
            return replay
        with self.engine.begin() as connection:
            self._registered(connection, (siret,))
            admins = _active_administrators(connection, siren)
            if admins:
                raise HabilitationRefused(
                    "ALREADY_REGISTERED",
                    f"company {siren} has an administrator: apply as a candidate administrator",
                )
            account = self._new_account(
                connection,
                account_row(siret, *names, password),
                role=Role.ADMINISTRATOR,
                status=AccountStatus.ACTIVE,
            )
            self._keep_names(connection, account, names)
            self._company_portfolio(connection, siren, siret)
            self._act(connection, siren, "registration", "REGISTER", f"account:{account}",
                      request_id=request_id)  # fmt: skip
        return account

    def register(
        self,
        siret: str,
        names: tuple[str, str],
        password: str,
        email: str,
        request_id: str = "",
    ) -> Registration | None:
        """An administrator's registration for the establishment's company, proven later: the
        Primo AD of a company that has none, else a Candidat AD. The account is a CANDIDATE with
        no rights until it confirmed its e-mail with the code sent there (`confirm_email` then
        posts the letter) and gave, with its own password, the key of the postal letter sent to
        the establishment's address in the RCD, or (a candidate) an active administrator
        validated it. An unproven candidate holds its triplet only until someone registers it
        again (the new registration replaces it: its password, address and proofs) or for
        PENDING_DAYS. For a triplet with an account that is not a candidate, nothing is made but
        a code (that confirms nothing new) for the address given: the caller sends the same
        e-mail and answers the same whatever the case. None only for a retry (same request
        id). Raises LetterRefused when no letter could go to the establishment, before looking
        at any account."""
        siren = siret[:9]
        row = account_row(siret, *names, password)  # the password's scrypt, in every case
        if self.replayed(siren, "REGISTER", request_id) or self.replayed(
            siren, "APPLY", request_id
        ):
            return None
        code = secrets.token_urlsafe(16)
        with self.engine.begin() as connection:
            self._registered(connection, (siret,))
            self._letters().recipient(siret)  # a letter can go there: said before anything else
            found = connection.execute(
                select(declarants.c.id, declarants.c.status).where(
                    declarants.c.identity_digest == row["identity_digest"]
                )
            ).first()
            if found is not None and found.status != AccountStatus.CANDIDATE:
                connection.execute(  # a code that confirms an address it already has
                    update(declarants).where(declarants.c.id == found.id)
                    .values(email_code_hash=_key_hash(code))
                )  # fmt: skip
                return Registration(int(found.id), code, first=False)
            first = not _active_administrators(connection, siren)
            if found is None:
                account = self._new_account(
                    connection, row, role=Role.ADMINISTRATOR, status=AccountStatus.CANDIDATE
                )
            else:  # an unproven candidate's triplet: this registration replaces it
                account = int(found.id)
                connection.execute(
                    update(declarants).where(declarants.c.id == account)
                    .values(password_hash=row["password_hash"], siret=siret)
                )  # fmt: skip
            self._keep_names(connection, account, names)
            connection.execute(
                update(declarants)
                .where(declarants.c.id == account)
                .values(email_sealed=self._seal_email(account, email), email_verified=False,
                        email_code_hash=_key_hash(code), proven=False, activation_hash=None)
            )  # fmt: skip
            self._act(connection, siren, f"account:{account}", "REGISTER" if first else "APPLY",
                      f"account:{account}", request_id=request_id)  # fmt: skip
        return Registration(account, code, first)

    def _letters(self) -> LetterStore:
        if self.sealer is None:
            raise RuntimeError("registrations need the node's sealing key (HabilitationStore)")
        return LetterStore(self.engine, self.sealer)

    def _seal_email(self, account: int, email: str) -> bytes:
        if self.sealer is None:
            raise RuntimeError("registrations need the node's sealing key (HabilitationStore)")
        return seal_email(self.sealer, account, email)

    def _keep_names(self, connection: Connection, account: int, names: tuple[str, str]) -> None:
        """Seals the account's names into its row (nothing without the node's key)."""
        if self.sealer is not None:
            connection.execute(
                update(declarants).where(declarants.c.id == account)
                .values(names_sealed=seal_names(self.sealer, account, names))
            )  # fmt: skip

    def email_of(self, account: int) -> str | None:
        """The account's e-mail address, if it gave one."""
        with reading(self.engine) as connection:
            sealed = connection.execute(
                select(declarants.c.email_sealed).where(declarants.c.id == account)
            ).scalar()
        if sealed is None or self.sealer is None:
            return None
        return open_email(self.sealer, account, bytes(sealed))

    def validate_candidate(self, author_id: int, candidate_id: int) -> None:
        """An active administrator validates a candidate of its company (its registration is
        proven; it becomes active once its e-mail is confirmed too)."""
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            candidate = self._member(connection, author, candidate_id)
            if candidate.status != AccountStatus.CANDIDATE:
                raise HabilitationRefused(
                    "NOT_A_CANDIDATE", f"account {candidate_id} is not a candidate administrator"
                )
            self._prove(connection, candidate_id, proven=True)
            self._act(
                connection,
                author.siren,
                f"declarant:{author_id}",
                "VALIDATE_ADMIN",
                f"account:{candidate_id}",
            )

    def activate_with_key(self, digest: bytes, password: str, key: str) -> int | None:
        """A candidate proves its registration with the postal letter's key (single use) and
        its own password: a key in someone else's hands activates nothing. Its id, or None for
        any mismatch (one scrypt in every case)."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(declarants.c.id, declarants.c.siret, declarants.c.password_hash,
                       declarants.c.activation_hash, declarants.c.status)
                .where(declarants.c.identity_digest == digest)
            ).first()  # fmt: skip
            right = check_password(password, dummy_hash() if row is None else row.password_hash)
            if (
                row is None
                or not right
                or row.status != AccountStatus.CANDIDATE
                or row.activation_hash is None
                or not hmac.compare_digest(bytes(row.activation_hash), _key_hash(key))
                or not self._pending(connection, row.id)
            ):
                return None
            self._prove(connection, row.id, proven=True)
            self._act(
                connection, row.siret[:9], "activation-key", "ACTIVATE_ADMIN", f"account:{row.id}"
            )
        return int(row.id)

    def confirm_email(self, code: str) -> bool:
        """An account confirms its e-mail with the code sent there (single use); a candidate's
        confirmed address sends the letter that proves its registration (at most
        PENDING_LETTERS waiting for the mail room per establishment: nobody makes the mail room
        post letters at will). False for a code that is not valid now."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(declarants.c.id, declarants.c.siret, declarants.c.status,
                       declarants.c.proven)
                .where(declarants.c.email_code_hash == _key_hash(code))
            ).first()  # fmt: skip
            if row is None:
                return False
            candidate = row.status == AccountStatus.CANDIDATE
            if candidate and not self._pending(connection, row.id):
                return False
            self._prove(connection, row.id, email=True)
            if candidate and not row.proven:
                self._post_activation(connection, int(row.id), str(row.siret))
            self._act(connection, row.siret[:9], f"account:{row.id}", "CONFIRM_EMAIL",
                      f"account:{row.id}")  # fmt: skip
        return True

    def _post_activation(self, connection: Connection, account: int, siret: str) -> None:
        """The letter with a candidate's activation key, to its establishment."""
        letters = self._letters()
        if letters.pending_for(siret, ACTIVATION_LETTERS, connection) >= PENDING_LETTERS:
            log.warning("establishment %s has %d activation letters waiting: none more posted",
                        siret, PENDING_LETTERS)  # fmt: skip
            return
        key = secrets.token_urlsafe(16)
        connection.execute(
            update(declarants).where(declarants.c.id == account)
            .values(activation_hash=_key_hash(key))
        )  # fmt: skip
        first = not _active_administrators(connection, siret[:9])
        kind = ACTIVATION_LETTERS[0] if first else ACTIVATION_LETTERS[1]
        letters.post(kind, siret, {"account": str(account), "key": key}, connection)

    def _pending(self, connection: Connection, account: int) -> bool:
        """Whether a candidate's registration is recent enough to be proven (PENDING_DAYS)."""
        since = connection.execute(
            select(func.max(admin_acts.c.at)).where(
                admin_acts.c.target == f"account:{account}",
                admin_acts.c.act.in_(("REGISTER", "APPLY")),
            )
        ).scalar()
        return since is not None and now_ms() - int(since) <= PENDING_DAYS * 86_400_000

    def _prove(
        self, connection: Connection, account_id: int, *, proven: bool = False, email: bool = False
    ) -> None:
        """Records a proof; a candidate whose registration is proven and whose e-mail is
        confirmed becomes active (the first administrator of its company gets its company
        portfolio)."""
        values: dict[str, object] = {}
        if proven:
            values.update(proven=True, activation_hash=None)
        if email:
            values.update(email_verified=True, email_code_hash=None)
        connection.execute(update(declarants).where(declarants.c.id == account_id).values(values))
        row = connection.execute(
            select(declarants.c.siret, declarants.c.status, declarants.c.proven,
                   declarants.c.email_verified).where(declarants.c.id == account_id)
        ).one()  # fmt: skip
        if row.status != AccountStatus.CANDIDATE or not (row.proven and row.email_verified):
            return
        self._activate(connection, account_id)
        siren = str(row.siret)[:9]
        has_portfolio = connection.execute(
            select(portfolios.c.id).where(
                portfolios.c.siren == siren, portfolios.c.kind == PortfolioKind.COMPANY
            )
        ).first()
        if has_portfolio is None:
            self._company_portfolio(connection, siren, str(row.siret))

    def _company_portfolio(self, connection: Connection, siren: str, siret: str) -> None:
        portfolio = connection.execute(
            insert(portfolios)
            .values(siren=siren, name="Entreprise", kind=PortfolioKind.COMPANY)
            .returning(portfolios.c.id)
        ).scalar_one()
        connection.execute(
            insert(portfolio_establishments).values(portfolio_id=portfolio, siret=siret)
        )

    def _activate(self, connection: Connection, account_id: int) -> None:
        connection.execute(
            update(declarants)
            .where(declarants.c.id == account_id)
            .values(status=AccountStatus.ACTIVE, activation_hash=None)
        )

    def create_declarant(
        self,
        author_id: int,
        siret: str,
        names: tuple[str, str],
        password: str,
        request_id: str = "",
    ) -> int:
        """A declarant of the author's company, created by an administrator only."""
        replay = self._account_replayed(siret[:9], "CREATE_DECLARANT", request_id)
        if replay is not None:
            return replay
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            if siret[:9] != author.siren:
                raise HabilitationRefused(
                    "NOT_YOUR_COMPANY", f"{siret} is not an establishment of {author.siren}"
                )
            account = self._new_account(
                connection, account_row(siret, *names, password), role=Role.DECLARANT,
                status=AccountStatus.ACTIVE,
            )  # fmt: skip
            self._keep_names(connection, account, names)
            self._act(
                connection,
                author.siren,
                f"declarant:{author_id}",
                "CREATE_DECLARANT",
                f"account:{account}",
                request_id=request_id,
            )
        return account

    def strike_off(self, author_id: int, declarant_id: int, successor_id: int = 0) -> int:
        """Strikes a declarant off; its habilitations go to the successor when one is named.
        Returns how many habilitations were transferred."""
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            target = self._member(connection, author, declarant_id)
            if target.status == AccountStatus.STRUCK_OFF:
                raise HabilitationRefused(
                    "ALREADY_STRUCK_OFF", f"account {declarant_id} is already struck off"
                )
            moved = 0
            if successor_id:
                successor = self._member(connection, author, successor_id)
                if successor.status != AccountStatus.ACTIVE or successor.id == declarant_id:
                    raise HabilitationRefused(
                        "BAD_SUCCESSOR",
                        "the successor must be another active account of the company",
                    )
                held = self._held(connection, declarant_id)
                mine = set(self._held(connection, successor_id))
                new = [h for h in held if h not in mine]
                if new:
                    connection.execute(
                        insert(habilitations),
                        [
                            {
                                "declarant_id": successor_id,
                                "siret": s,
                                "service": v,
                                "granted_by": author_id,
                                "granted_at": now_ms(),
                            }
                            for s, v in new
                        ],
                    )
                moved = len(new)
            connection.execute(
                delete(habilitations).where(habilitations.c.declarant_id == declarant_id)
            )
            connection.execute(
                delete(declarant_grants).where(declarant_grants.c.declarant_id == declarant_id)
            )
            connection.execute(
                update(declarants)
                .where(declarants.c.id == declarant_id)
                .values(status=AccountStatus.STRUCK_OFF)
            )
            cut_off(connection, [declarant_subject(declarant_id)])  # its live chains end now
            detail = (
                f"successor account:{successor_id}, {moved} transferred" if successor_id else ""
            )
            self._act(
                connection,
                author.siren,
                f"declarant:{author_id}",
                "STRIKE_OFF",
                f"account:{declarant_id}",
                detail=detail,
            )
        return moved

    # -- portfolios ------------------------------------------------------------------------

    def create_portfolio(self, author_id: int, name: str, request_id: str = "") -> int:
        """A client portfolio of the author's company (the same one again for a retried
        request id)."""
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            if self.replayed(author.siren, "CREATE_PORTFOLIO", request_id, connection) == name:
                return self._portfolio(connection, author, name)
            try:
                portfolio = connection.execute(
                    insert(portfolios)
                    .values(siren=author.siren, name=name, kind=PortfolioKind.CLIENTS)
                    .returning(portfolios.c.id)
                ).scalar_one()
            except IntegrityError:
                raise HabilitationRefused(
                    "PORTFOLIO_EXISTS", f"a portfolio is named {name!r}"
                ) from None
            self._act(connection, author.siren, f"declarant:{author_id}", "CREATE_PORTFOLIO", name,
                      request_id=request_id)  # fmt: skip
        return int(portfolio)

    def _portfolio(self, connection: Connection, author: Account, name: str) -> int:
        found = connection.execute(
            select(portfolios.c.id).where(
                portfolios.c.siren == author.siren, portfolios.c.name == name
            )
        ).scalar()
        if found is None:
            raise HabilitationRefused("UNKNOWN_PORTFOLIO", f"no portfolio named {name!r}")
        return int(found)

    def change_portfolio(
        self,
        author_id: int,
        name: str,
        *,
        add: bool,
        sirets: tuple[str, ...] = (),
        services: tuple[str, ...] = (),
    ) -> tuple[int, str]:
        """Adds or removes establishments or services; (rows changed, warning)."""
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise HabilitationRefused("UNKNOWN_SERVICE", f"no service {unknown[0]!r}")
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            portfolio = self._portfolio(connection, author, name)
            if add and sirets:
                self._registered(connection, sirets)
                self._may_hold(connection, author, sirets)
            changed = 0
            for table, column, values in (
                (portfolio_establishments, "siret", sirets),
                (portfolio_services, "service", services),
            ):
                present = set(
                    connection.execute(
                        select(table.c[column]).where(table.c.portfolio_id == portfolio)
                    ).scalars()
                )
                todo = [v for v in dict.fromkeys(values) if (v in present) != add]
                if not todo:
                    continue
                if add:
                    connection.execute(
                        insert(table), [{"portfolio_id": portfolio, column: v} for v in todo]
                    )
                else:
                    self._end_mandate(connection, author.siren, portfolio, column, todo)
                    connection.execute(
                        delete(table).where(
                            table.c.portfolio_id == portfolio, table.c[column].in_(todo)
                        )
                    )
                changed += len(todo)
                act = ("ADD_" if add else "REMOVE_") + column.upper()
                self._act(
                    connection,
                    author.siren,
                    f"declarant:{author_id}",
                    act,
                    name,
                    detail=",".join(todo),
                )
            size = (
                connection.execute(
                    select(func.count())
                    .select_from(portfolio_establishments)
                    .where(portfolio_establishments.c.portfolio_id == portfolio)
                ).scalar()
                or 0
            )
        warning = (
            (
                f"portfolio {name!r} holds {size} establishments: above {PORTFOLIO_ADVICE} "
                "it gets hard to manage"
            )
            if size > PORTFOLIO_ADVICE
            else ""
        )
        return changed, warning

    @staticmethod
    def _end_mandate(
        connection: Connection, siren: str, portfolio: int, column: str, removed: list[str]
    ) -> None:
        """When a client's establishments or services leave a CLIENTS portfolio (the firm's
        mandate ends), the live chains of the firm's declarants habilitated through them end
        in the same transaction: they carried the rights."""
        kind = connection.execute(
            select(portfolios.c.kind).where(portfolios.c.id == portfolio)
        ).scalar()
        if kind != PortfolioKind.CLIENTS:
            return
        through = [habilitations.c[column].in_(removed)]
        if column == "service":  # over the establishments of this portfolio
            through.append(habilitations.c.siret.in_(
                select(portfolio_establishments.c.siret).where(
                    portfolio_establishments.c.portfolio_id == portfolio
                )
            ))  # fmt: skip
        holders = connection.execute(
            select(habilitations.c.declarant_id)
            .distinct()
            .join(declarants, declarants.c.id == habilitations.c.declarant_id)
            .where(*through, func.substr(declarants.c.siret, 1, 9) == siren)
        ).scalars()
        cut_off(connection, [declarant_subject(declarant_id) for declarant_id in holders])

    def portfolios_of(
        self, siren: str, limit: int | None = None, after: str = ""
    ) -> list[Portfolio]:
        """The company's portfolios by name, after the name `after`."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(portfolios)
                .where(portfolios.c.siren == siren, portfolios.c.name > after)
                .order_by(portfolios.c.name)
                .limit(limit)
            ).all()
            found = []
            for row in rows:
                sirets = connection.execute(
                    select(portfolio_establishments.c.siret)
                    .where(portfolio_establishments.c.portfolio_id == row.id)
                    .order_by(portfolio_establishments.c.siret)
                ).scalars()
                services = connection.execute(
                    select(portfolio_services.c.service)
                    .where(portfolio_services.c.portfolio_id == row.id)
                    .order_by(portfolio_services.c.service)
                ).scalars()
                found.append(
                    Portfolio(row.name, PortfolioKind(row.kind), list(sirets), list(services))
                )
        return found

    # -- mandates to firms ------------------------------------------------------------------

    def grant_mandate(self, author_id: int, client_siret: str, firm_siren: str) -> bool:
        """The author's company gives the firm a mandate for one of its establishments; False
        when it held one already."""
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            if client_siret[:9] != author.siren:
                raise HabilitationRefused(
                    "NOT_YOUR_COMPANY", f"{client_siret} is not an establishment of {author.siren}"
                )
            if firm_siren == author.siren:
                raise HabilitationRefused("BAD_FIRM", "a company needs no mandate from itself")
            self._registered(connection, (client_siret,))
            known = connection.execute(
                select(establishments.c.siret).where(establishments.c.siret.startswith(firm_siren))
                .limit(1)
            ).first()  # fmt: skip
            if known is None:
                raise HabilitationRefused("BAD_FIRM", f"{firm_siren} is no company of the registry")
            key = (firm_mandates.c.client_siret == client_siret,
                   firm_mandates.c.firm_siren == firm_siren)  # fmt: skip
            ended = connection.execute(select(firm_mandates.c.ended_at).where(*key)).first()
            if ended is not None and ended.ended_at == 0:
                return False
            values = {"granted_by": author_id, "granted_at": now_ms(), "ended_at": 0}
            if ended is None:
                connection.execute(insert(firm_mandates).values(
                    client_siret=client_siret, firm_siren=firm_siren, **values))  # fmt: skip
            else:
                connection.execute(update(firm_mandates).where(*key).values(**values))
            self._act(connection, author.siren, f"declarant:{author_id}", "GRANT_MANDATE",
                      f"firm:{firm_siren}", detail=client_siret)  # fmt: skip
        return True

    def end_mandate(self, author_id: int, client_siret: str, firm_siren: str) -> bool:
        """Ends the firm's mandate for one of the author's company's establishments: the live
        chains of the firm's accounts, and its links to the establishment (the links of the firms
        its DSNs took over last again); False when there was none."""
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            if client_siret[:9] != author.siren:
                raise HabilitationRefused(
                    "NOT_YOUR_COMPANY", f"{client_siret} is not an establishment of {author.siren}"
                )
            done = connection.execute(
                update(firm_mandates)
                .where(firm_mandates.c.client_siret == client_siret,
                       firm_mandates.c.firm_siren == firm_siren, firm_mandates.c.ended_at == 0)
                .values(ended_at=now_ms())
            ).rowcount  # fmt: skip
            if done:
                end_mandated_links(connection, firm_siren, client_siret)
                accounts = connection.execute(
                    select(declarants.c.id).where(declarants.c.siret.startswith(firm_siren))
                ).scalars()
                cut_off(connection, [declarant_subject(account) for account in accounts])
                self._act(connection, author.siren, f"declarant:{author_id}", "END_MANDATE",
                          f"firm:{firm_siren}", detail=client_siret)  # fmt: skip
        return bool(done)

    def mandates_of(self, siren: str) -> list[FirmMandate]:
        """The mandates the company gave (for its establishments) and received (as a firm)."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(firm_mandates)
                .where((firm_mandates.c.firm_siren == siren)
                       | firm_mandates.c.client_siret.startswith(siren))
                .order_by(firm_mandates.c.client_siret, firm_mandates.c.firm_siren)
            ).all()  # fmt: skip
        return [FirmMandate(r.client_siret, r.firm_siren, r.granted_at, r.ended_at) for r in rows]

    # -- habilitations ---------------------------------------------------------------------

    def _held(self, connection: Connection, declarant_id: int) -> list[tuple[str, str]]:
        return [
            (r.siret, r.service)
            for r in connection.execute(
                select(habilitations.c.siret, habilitations.c.service).where(
                    habilitations.c.declarant_id == declarant_id
                )
            )
        ]

    def grant(self, author_id: int, declarant_id: int, siret: str, service: str) -> bool:
        """Grants a habilitation; False when it was already held."""
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            target = self._member(connection, author, declarant_id)
            if target.status != AccountStatus.ACTIVE:
                raise HabilitationRefused(
                    "ACCOUNT_INACTIVE", f"account {declarant_id} is {target.status.lower()}"
                )
            if service not in SERVICES:
                raise HabilitationRefused("UNKNOWN_SERVICE", f"no service {service!r}")
            offered = connection.execute(
                select(func.count())
                .select_from(
                    portfolio_establishments.join(
                        portfolio_services,
                        portfolio_services.c.portfolio_id
                        == portfolio_establishments.c.portfolio_id,
                    ).join(portfolios, portfolios.c.id == portfolio_establishments.c.portfolio_id)
                )
                .where(
                    portfolios.c.siren == author.siren,
                    portfolio_establishments.c.siret == siret,
                    portfolio_services.c.service == service,
                )
            ).scalar()
            if not offered:
                raise HabilitationRefused(
                    "NOT_IN_A_PORTFOLIO",
                    f"{siret} is in no portfolio of the company with the service {service}",
                )
            self._may_hold(connection, author, (siret,))
            if (
                SERVICES[service].case == MANDATED
                and siret[:9] != author.siren
                and not mandated_among(connection, author.siren, (siret,))
            ):
                # Bank data: a DSN link does not entitle a firm to it (declarative_services.py).
                raise HabilitationRefused(
                    "NOT_MANAGED",
                    f"{siret}: the service {service} shows bank data; another company's "
                    "establishment needs that company's explicit mandate, a DSN link is not enough",
                )
            if (siret, service) in set(self._held(connection, declarant_id)):
                return False
            connection.execute(
                insert(habilitations).values(
                    declarant_id=declarant_id,
                    siret=siret,
                    service=service,
                    granted_by=author_id,
                    granted_at=now_ms(),
                )
            )
            self._act(
                connection,
                author.siren,
                f"declarant:{author_id}",
                "GRANT",
                f"account:{declarant_id}",
                detail=f"{service} {siret}",
            )
        return True

    def revoke(self, author_id: int, declarant_id: int, siret: str, service: str) -> bool:
        """Revokes a habilitation; False when it was not held."""
        with self.engine.begin() as connection:
            author = self._admin(connection, author_id)
            self._member(connection, author, declarant_id)
            done = connection.execute(
                delete(habilitations).where(
                    habilitations.c.declarant_id == declarant_id,
                    habilitations.c.siret == siret,
                    habilitations.c.service == service,
                )
            ).rowcount
            if done:
                cut_off(connection, [declarant_subject(declarant_id)])  # chains carry the right
                self._act(
                    connection,
                    author.siren,
                    f"declarant:{author_id}",
                    "REVOKE",
                    f"account:{declarant_id}",
                    detail=f"{service} {siret}",
                )
        return bool(done)

    def habilitations_of(self, declarant_id: int) -> list[Habilitation]:
        """The declarant's habilitations."""
        with reading(self.engine) as connection:
            return [
                Habilitation(declarant_id, s, v)
                for s, v in sorted(self._held(connection, declarant_id))
            ]

    def company_habilitations(
        self,
        siren: str,
        limit: int | None = None,
        after: tuple[int, str, str] = (0, "", ""),
        declarant_id: int = 0,
    ) -> list[Habilitation]:
        """Habilitations of the company's accounts (or of one), by account, SIRET and service,
        after the key `after`."""
        key = tuple_(habilitations.c.declarant_id, habilitations.c.siret, habilitations.c.service)
        query = (
            select(habilitations.c.declarant_id, habilitations.c.siret, habilitations.c.service)
            .join(declarants, declarants.c.id == habilitations.c.declarant_id)
            .where(declarants.c.siret.startswith(siren), key > tuple_(*after))
            .order_by(habilitations.c.declarant_id, habilitations.c.siret, habilitations.c.service)
            .limit(limit)
        )
        if declarant_id:
            query = query.where(habilitations.c.declarant_id == declarant_id)
        with reading(self.engine) as connection:
            return [Habilitation(r.declarant_id, r.siret, r.service)
                    for r in connection.execute(query)]  # fmt: skip

    def accounts_of(self, siren: str, limit: int | None = None, after: int = 0) -> list[Account]:
        """The company's accounts by id, after the id `after`, with their names where kept."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(declarants.c.id, declarants.c.siret, declarants.c.role,
                       declarants.c.status, declarants.c.names_sealed)
                .where(declarants.c.siret.startswith(siren), declarants.c.id > after)
                .order_by(declarants.c.id)
                .limit(limit)
            ).all()  # fmt: skip
        return [
            replace(_account(r), names=open_names(self.sealer, r.id, bytes(r.names_sealed)))
            if r.names_sealed is not None and self.sealer is not None
            else _account(r)
            for r in rows
        ]

    def acts(self, siren: str, limit: int = 1000, after: int = 0) -> list[AdminAct]:
        """The company's administrative acts, oldest first, after the act id `after`."""
        with reading(self.engine) as connection:
            return [
                AdminAct(r.id, r.author, r.act, r.target, r.detail, r.at)
                for r in connection.execute(
                    select(admin_acts)
                    .where(admin_acts.c.siren == siren, admin_acts.c.id > after)
                    .order_by(admin_acts.c.id)
                    .limit(limit)
                )
            ]
