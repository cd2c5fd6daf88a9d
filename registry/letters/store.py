"""Postal letters (issue 19): secrets mailed to an establishment's address in the RCD, a channel
of their own. A letter is posted, printed in a batch for the mail room, then tracked; no
notification, dashboard, REST or gRPC route reads one, and only the mail room's batch
(server/cli/letter_commands.py) opens its text.

The API the services call::

    store = LetterStore(engine, AESGCM(data_key))      # the node's at-rest key (keys/data.key)
    letter_id = store.post("ADMIN_ACTIVATION", siret, {"account": "12", "key": key})

`post(kind, siret, values) -> int` reads the establishment's address from the RCD now, writes
the letter's text from its kind's template (TEMPLATES: French, as data) and records it PENDING,
its address and text sealed to the row. The values each kind needs, exactly (LETTER_VALUES):

    ADMIN_ACTIVATION       account, key    a company's first administrator (registration)
    CANDIDATE_ACTIVATION   account, key    a candidate administrator, approved by the company
    PASSWORD_RESET         account, code   a password reset by the support

(`account` is how the holder knows the account, e.g. its number.) The company's name and the
SIRET are filled in by the store. It raises LetterRefused, with a stable `reason`: an unknown
kind or values other than those (BAD_LETTER), an establishment the RCD does not hold
(UNKNOWN_ESTABLISHMENT), a ceased one (ESTABLISHMENT_CEASED), or one without a usable postal
address (NO_POSTAL_ADDRESS).

Then the mail room: `take_batch(batch_id)` takes every pending letter for one batch, atomically
(two operators never print one letter twice), with its text; `track(letter_id, state,
tracking)` records what the post did with it; `letters(...)` and `pending()` list letters
without their address or text. A letter's text is erased once it left the mail room.
"""

from __future__ import annotations

import enum
import json
import re
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, Row, func, insert, select, update

from registry.kernel.clock import now_ms
from registry.kernel.database import reading
from registry.kernel.sealing import seal, unseal
from registry.letters.schema import postal_letters
from registry.letters.states import TRANSITIONS, LetterState
from registry.rcd.records import AdministrativeState, CompanyRecord, EstablishmentRecord, name_key
from registry.rcd.store import RcdStore


class LetterKind(enum.StrEnum):
    """What a letter carries."""

    # The activation key of a company's first administrator, at registration.
    ADMIN_ACTIVATION = "ADMIN_ACTIVATION"
    # The activation key of a candidate administrator, for the company to hand over or not.
    CANDIDATE_ACTIVATION = "CANDIDATE_ACTIVATION"
    # A password-reset code, when the support resets an account's password.
    PASSWORD_RESET = "PASSWORD_RESET"  # noqa: S105 (a kind of letter, not a password)


# Once in these states the letter is out of the mail room: its text is erased.
_OUT = frozenset({LetterState.SENT, LetterState.DELIVERED, LetterState.RETURNED})

_CLOSING = "\n\nNous vous prions d'agréer, Madame, Monsieur, nos salutations distinguées."


@dataclass(frozen=True)
class LetterTemplate:
    """A kind's subject and body; {company} and {siret} are the store's, the others the
    caller's values."""

    subject: str
    body: str

    def fields(self) -> frozenset[str]:
        """The names the body needs."""
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.body) if name)


TEMPLATES: dict[LetterKind, LetterTemplate] = {
    LetterKind.ADMIN_ACTIVATION: LetterTemplate(
        "Clé d'activation de votre compte administrateur",
        "Madame, Monsieur,\n\n"
        "Une inscription au portail InterOPS a été demandée pour l'entreprise {company}, au "
        "titre de son établissement {siret}. La personne qui l'a demandée (compte n° {account}) "
        "en deviendra le premier administrateur.\n\n"
        "Clé d'activation de votre compte administrateur : {key}\n\n"
        "Pour activer ce compte, connectez-vous au portail InterOPS avec l'identité et le mot "
        "de passe choisis à l'inscription, puis saisissez cette clé lorsqu'elle vous est "
        "demandée. Elle ne sert qu'une fois. Ne la communiquez à personne : ni le portail ni "
        "son support ne vous la demanderont, par téléphone ou par courriel.\n\n"
        "Si personne dans votre entreprise n'a demandé cette inscription, ne tenez pas compte "
        "de ce courrier et détruisez-le : sans cette clé, le compte reste inactif." + _CLOSING,
    ),
    LetterKind.CANDIDATE_ACTIVATION: LetterTemplate(
        "Clé d'activation d'un administrateur candidat",
        "Madame, Monsieur,\n\n"
        "Une demande d'accès administrateur au portail InterOPS a été faite pour l'entreprise "
        "{company}, au titre de son établissement {siret} (compte n° {account}).\n\n"
        "Clé d'activation du compte administrateur : {key}\n\n"
        "Si votre entreprise approuve cette demande, remettez cette clé en main propre à la "
        "personne qui l'a faite : une fois connectée au portail InterOPS, elle la saisira pour "
        "activer son compte. La clé ne sert qu'une fois.\n\n"
        "Si personne dans votre entreprise n'a fait cette demande, ou si vous ne l'approuvez "
        "pas, ne tenez pas compte de ce courrier et ne remettez cette clé à personne : le "
        "compte restera inactif." + _CLOSING,
    ),
    LetterKind.PASSWORD_RESET: LetterTemplate(
        "Code de réinitialisation de votre mot de passe",
        "Madame, Monsieur,\n\n"
        "À la demande faite au support du portail InterOPS, un nouveau mot de passe peut être "
        "choisi pour le compte n° {account} de l'entreprise {company} (établissement "
        "{siret}).\n\n"
        "Code de réinitialisation de votre mot de passe : {code}\n\n"
        "Rendez-vous sur le portail InterOPS, à la page de réinitialisation du mot de passe, "
        "et saisissez ce code avec votre nouveau mot de passe. Le code ne sert qu'une fois et "
        "pour une durée limitée.\n\n"
        "Si vous n'avez pas demandé à changer de mot de passe, ne tenez pas compte de ce "
        "courrier, ne communiquez ce code à personne et signalez-le au support du portail : "
        "votre mot de passe actuel reste valable." + _CLOSING,
    ),
}
# The names the store fills in itself.
_STORE_FIELDS = frozenset({"company", "siret"})
# The values each kind needs from its caller, exactly.
LETTER_VALUES: dict[LetterKind, frozenset[str]] = {
    kind: template.fields() - _STORE_FIELDS for kind, template in TEMPLATES.items()
}
_MAX_VALUE = 200
_BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TRACKING = re.compile(r"[A-Za-z0-9 _./-]{0,64}")
# SIRENE's repetition indexes (indiceRepetition) as written on an envelope.
_REPETITION = {"B": "BIS", "T": "TER", "Q": "QUATER", "C": "QUINQUIES"}


# What a listing reads: never the sealed address nor text.
_LISTED = [postal_letters.c[name] for name in ("id", "siret", "kind", "state", "batch_id",
           "tracking", "created_at", "state_changed_at")]  # fmt: skip


class LetterRefused(ValueError):
    """A letter that cannot be posted or tracked: `reason` is a stable code, the message says
    why (a SIRET or a letter id at most, never an address or a secret)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Recipient:
    """A postal address as the RCD held it: the name and street lines, then the town."""

    lines: tuple[str, ...]
    postal_code: str
    city: str
    # "" in France.
    country: str

    def address_lines(self) -> list[str]:
        """The lines of the address block, from the name to the town (and country abroad)."""
        town = f"{self.postal_code} {self.city}".strip()
        return [*self.lines, town, *([self.country] if self.country else [])]


@dataclass(frozen=True)
class Letter:
    """A letter to print, with its address and text."""

    id: int
    siret: str
    kind: LetterKind
    recipient: Recipient
    subject: str
    body: str
    created_at: int
    batch_id: str


@dataclass(frozen=True)
class LetterSummary:
    """A letter as listed: never its address nor its text. Times in Unix milliseconds."""

    id: int
    siret: str
    kind: LetterKind
    state: LetterState
    batch_id: str
    tracking: str
    created_at: int
    state_changed_at: int


def recipient_of(company: CompanyRecord | None, establishment: EstablishmentRecord) -> Recipient:
    """The establishment's postal address, addressed to its company (and its own name when it
    has another); raises LetterRefused when it has none that the post could deliver to."""
    name = company.name.strip() if company is not None else ""
    own = establishment.name.strip()
    lines = [name or own]
    if own and name and name_key(own) != name_key(name):
        lines.append(own)
    suffix = establishment.street_number_suffix.strip()
    street = " ".join(
        part
        for part in (
            establishment.street_number.strip(),
            _REPETITION.get(suffix.upper(), suffix),
            establishment.street_type.strip(),
            establishment.street_name.strip(),
        )
        if part
    )
    where = [line for line in (establishment.complement.strip(), street) if line]
    postal_code, city = establishment.postal_code.strip(), establishment.city.strip()
    country = establishment.country.strip()
    if not lines[0] or not where or not city or not (postal_code or country):
        raise LetterRefused(
            "NO_POSTAL_ADDRESS",
            f"the establishment {establishment.siret} has no usable postal address in the RCD",
        )
    return Recipient((*lines, *where), postal_code, city, country)


def _bound(letter_id: int, siret: str, kind: str, part: str) -> bytes:
    """Associated data binding a sealed part to its row, its SIRET and its kind."""
    return f"interops.postal_letter.v1\0{letter_id}\0{siret}\0{kind}\0{part}".encode()


def _checked_values(kind: str, values: Mapping[str, str]) -> tuple[LetterKind, dict[str, str]]:
    try:
        letter_kind = LetterKind(kind)
    except ValueError:
        raise LetterRefused("BAD_LETTER", f"no letter kind {kind!r}") from None
    expected = LETTER_VALUES[letter_kind]
    if set(values) != expected:
        raise LetterRefused(
            "BAD_LETTER", f"a {letter_kind} letter takes exactly the values {sorted(expected)}"
        )
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_VALUE:
            raise LetterRefused("BAD_LETTER", f"the value {name!r} is empty or too long")
        if not value.isprintable():
            raise LetterRefused("BAD_LETTER", f"the value {name!r} has control characters")
    return letter_kind, dict(values)


class LetterStore:
    """Postal letters in the node's database, their address and text sealed with `sealer`
    (the AESGCM of the node's at-rest key)."""

    def __init__(self, engine: Engine, sealer: AESGCM) -> None:
        self.engine = engine
        self.sealer = sealer
        self.registry = RcdStore(engine)

    # -- posting ---------------------------------------------------------------------------

    def post(
        self,
        kind: str,
        siret: str,
        values: Mapping[str, str],
        connection: Connection | None = None,
    ) -> int:
        """Records a letter of that kind to the establishment's address in the RCD; returns
        its id; in the caller's transaction when `connection` is given (the letter is then
        posted only if what it proves is committed). See the module's docstring for the kinds,
        their values and the refusals."""
        letter_kind, fields = _checked_values(kind, values)
        recipient = self.recipient(siret)
        template = TEMPLATES[letter_kind]
        body = template.body.format_map({**fields, "company": recipient.lines[0], "siret": siret})
        moment = now_ms()
        row = {"siret": siret, "kind": letter_kind.value, "recipient_sealed": b"",
               "created_at": moment, "state": LetterState.PENDING.value, "batch_id": "",
               "tracking": "", "state_changed_at": moment}  # fmt: skip
        if connection is None:
            with self.engine.begin() as own:
                return self._write(own, row, recipient, template.subject, body)
        return self._write(connection, row, recipient, template.subject, body)

    def recipient(self, siret: str) -> Recipient:
        """Who a letter to the establishment goes to, from the RCD now; raises LetterRefused
        when none could be posted (unknown, ceased, no usable address)."""
        establishment = self.registry.get_establishments([siret]).get(siret)
        if establishment is None:
            raise LetterRefused("UNKNOWN_ESTABLISHMENT", f"the RCD holds no establishment {siret}")
        if establishment.state == AdministrativeState.CEASED:
            raise LetterRefused(
                "ESTABLISHMENT_CEASED", f"the establishment {siret} has ceased its activity"
            )
        return recipient_of(self.registry.get_company(siret[:9]), establishment)

    def pending_for(self, siret: str, kinds: tuple[str, ...], connection: Connection) -> int:
        """How many letters of these kinds wait for the mail room for the establishment."""
        return int(
            connection.execute(
                select(func.count())
                .select_from(postal_letters)
                .where(
                    postal_letters.c.siret == siret,
                    postal_letters.c.kind.in_(kinds),
                    postal_letters.c.state == LetterState.PENDING.value,
                )
            ).scalar()
            or 0
        )

    def _write(
        self,
        connection: Connection,
        row: Mapping[str, object],
        recipient: Recipient,
        subject: str,
        body: str,
    ) -> int:
        """Writes the letter's row, then seals its parts to it (the id binds them)."""
        letter_id = int(
            connection.execute(
                insert(postal_letters).values(row).returning(postal_letters.c.id)
            ).scalar_one()
        )
        text = {"subject": subject, "body": body}
        sealed = {
            "recipient_sealed": self._seal(letter_id, row, "recipient", asdict(recipient)),
            "body_sealed": self._seal(letter_id, row, "body", text),
        }
        connection.execute(
            update(postal_letters).where(postal_letters.c.id == letter_id).values(sealed)
        )
        return letter_id

    def _seal(self, letter_id: int, row: Mapping[str, object], part: str, value: object) -> bytes:
        plain = json.dumps(value, ensure_ascii=False).encode()
        return seal(
            self.sealer, plain, _bound(letter_id, str(row["siret"]), str(row["kind"]), part)
        )

    def _unseal(self, row: Row[Any], part: str, sealed: bytes) -> Any:
        return json.loads(unseal(self.sealer, sealed, _bound(row.id, row.siret, row.kind, part)))

    # -- the mail room ---------------------------------------------------------------------

    def take_batch(self, batch_id: str, limit: int | None = None) -> list[Letter]:
        """Marks the pending letters (the oldest `limit` of them, or all) PRINTED in batch
        `batch_id` and returns them with their text, oldest first. One statement marks and
        returns them: two batches taken at once never share a letter. `batch_id` (letters,
        digits, '.', '_', '-'; a directory name in the mail room) must be new."""
        if not _BATCH_ID.fullmatch(batch_id):
            raise LetterRefused("BAD_BATCH", "a batch id is 1 to 64 letters, digits, . _ or -")
        moment = now_ms()
        pending = postal_letters.c.state == LetterState.PENDING.value
        chosen = select(postal_letters.c.id).where(pending).order_by(postal_letters.c.id)
        if limit is not None:
            chosen = chosen.limit(limit)
        with self.engine.begin() as connection:
            used = connection.execute(
                select(postal_letters.c.id).where(postal_letters.c.batch_id == batch_id).limit(1)
            ).first()
            if used is not None:
                raise LetterRefused("BAD_BATCH", f"the batch {batch_id} was already taken")
            # The state is checked again on the row being updated: on PostgreSQL a row another
            # batch took meanwhile is re-read after its commit and then skipped.
            rows = connection.execute(
                update(postal_letters)
                .where(pending, postal_letters.c.id.in_(chosen.scalar_subquery()))
                .values(state=LetterState.PRINTED.value, batch_id=batch_id)
                .values(state_changed_at=moment)
                .returning(*postal_letters.c)
            ).all()
            # Opened before the commit: a letter that does not open (altered, moved, another
            # key) leaves the whole batch pending.
            letters = [self._letter(row) for row in rows]
        return sorted(letters, key=lambda letter: letter.id)

    def batch(self, batch_id: str) -> list[Letter]:
        """The letters of a batch not yet out of the mail room (PRINTED), with their text, to
        print them again when the batch's files were lost."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(postal_letters)
                .where(
                    postal_letters.c.batch_id == batch_id,
                    postal_letters.c.state == LetterState.PRINTED.value,
                )
                .order_by(postal_letters.c.id)
            ).all()
        return [self._letter(row) for row in rows]

    def _letter(self, row: Row[Any]) -> Letter:
        recipient = self._unseal(row, "recipient", row.recipient_sealed)
        text = self._unseal(row, "body", row.body_sealed)
        return Letter(
            id=row.id, siret=row.siret, kind=LetterKind(row.kind),
            recipient=Recipient(**{**recipient, "lines": tuple(recipient["lines"])}),
            subject=text["subject"], body=text["body"], created_at=row.created_at,
            batch_id=row.batch_id,
        )  # fmt: skip

    def track(self, letter_id: int, state: str, tracking: str = "") -> LetterSummary:
        """Records what became of a printed letter (SENT, DELIVERED or RETURNED) and its
        tracking number ("" keeps the one recorded); erases its text, which is out of the mail
        room. Raises LetterRefused for an unknown letter, a move TRANSITIONS does not allow or
        a malformed tracking number."""
        try:
            target = LetterState(state)
        except ValueError:
            raise LetterRefused("BAD_TRANSITION", f"no letter state {state!r}") from None
        if not _TRACKING.fullmatch(tracking):
            raise LetterRefused(
                "BAD_TRACKING", "a tracking number is at most 64 letters, digits, spaces, . _ / -"
            )
        with self.engine.begin() as connection:
            row = connection.execute(
                select(postal_letters.c.state, postal_letters.c.tracking)
                .where(postal_letters.c.id == letter_id)
                .with_for_update()
            ).first()
            if row is None:
                raise LetterRefused("UNKNOWN_LETTER", f"no letter {letter_id}")
            current = LetterState(row.state)
            if target not in TRANSITIONS[current]:
                raise LetterRefused(
                    "BAD_TRANSITION", f"letter {letter_id} is {current}: it cannot become {target}"
                )
            values: dict[str, object] = {"state": target.value, "state_changed_at": now_ms(),
                                         "tracking": tracking or row.tracking}  # fmt: skip
            if target in _OUT:
                values["body_sealed"] = None
            connection.execute(
                update(postal_letters).where(postal_letters.c.id == letter_id).values(values)
            )
        return self.letters(after_id=letter_id - 1, limit=1)[0]  # the one just tracked

    # -- listing ---------------------------------------------------------------------------

    def letters(
        self,
        state: str | None = None,
        siret: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[LetterSummary]:
        """Letters (in that state, to that SIRET) after the id `after_id`, by id: never their
        address nor their text."""
        query = (
            select(*_LISTED)
            .where(postal_letters.c.id > after_id)
            .order_by(postal_letters.c.id)
            .limit(limit)
        )
        if state is not None:
            query = query.where(postal_letters.c.state == LetterState(state).value)
        if siret is not None:
            query = query.where(postal_letters.c.siret == siret)
        with reading(self.engine) as connection:
            rows = connection.execute(query).all()
        return [
            LetterSummary(row.id, row.siret, LetterKind(row.kind), LetterState(row.state),
                          row.batch_id, row.tracking, row.created_at, row.state_changed_at)
            for row in rows
        ]  # fmt: skip

    def pending(self) -> list[LetterSummary]:
        """The letters waiting for a batch, oldest first (without address nor text)."""
        return self.letters(state=LetterState.PENDING, limit=1_000_000)
