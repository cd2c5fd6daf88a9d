"""SEPA direct debit mandates: a company enters one per creditor (the creditor organism must be
registered with its SEPA identifier), acknowledges it once signed, reuses it for every
declaration it pays that creditor, and may revoke it; each creditor reads and extracts its own.

The IBAN is sealed at rest with the node's data key, bound to the mandate's creditor and
reference (registry/kernel/sealing.py), and opened only to answer; no lookup goes by IBAN, so no
digest of it is kept. Refusals carry the ErrorReason names of the contract.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from interops.mandate.v1 import mandate_pb2 as pb
from sqlalchemy import Engine, Select, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from registry.kernel.clock import now_ms
from registry.kernel.database import reading
from registry.kernel.sealing import NONCE_BYTES, seal, unseal
from registry.mandate.bank_details import (
    UNKNOWN_BANK,
    BankDetailsError,
    check_bic,
    check_bic_country,
    check_creditor_identifier,
    check_iban,
    french_bank_code,
)
from registry.mandate.bank_reference import BankReference
from registry.mandate.schema import mandate_creditors, mandate_extractions, mandate_uses, mandates

PENDING = pb.MANDATE_STATE_PENDING
ACKNOWLEDGED = pb.MANDATE_STATE_ACKNOWLEDGED
REVOKED = pb.MANDATE_STATE_REVOKED
# The extraction's state of an acknowledged mandate unused for 36 months (MandateRecord.lapsed).
LAPSED = "LAPSED"
# The extraction file's columns (interops.mandate.v1.ExtractMandatesResult).
EXTRACT_HEADER = ("reference", "debtor", "iban", "bic", "scheme", "signed_on", "state",
                  "acknowledged_at", "revoked_at", "uses")  # fmt: skip
# A caller-chosen reference must begin with the debtor's SIREN (the one made begins with it too).
REFERENCE_PREFIX = "MANDATE_REFERENCE_NOT_DEBTORS"
# SEPA direct debit began on this day: no mandate was signed before.
SEPA_START = date(2009, 11, 1)
# A mandate not used for this long (36 months) lapses (SEPA rulebooks).
LAPSE_YEARS = 3
# Rows read per round trip while extracting, and between two progress records.
EXTRACT_BATCH = 5000


class MandateRefused(ValueError):
    """A mandate act refused: its reason (an ErrorReason name) and, for bad input, the field."""

    def __init__(self, reason: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class Creditor:
    """A creditor organism, its SEPA identifier and postal address (lines)."""

    code: str
    identifier: str
    name: str
    address: str = ""


@dataclass(frozen=True, slots=True)
class NewMandate:
    """A mandate to enter, as the debtor gives it (an empty reference: one is made)."""

    debtor: str
    creditor: str
    reference: str
    iban: str
    bic: str
    scheme: int
    signed_on: str


@dataclass(frozen=True, slots=True)
class MandateRecord:
    """One mandate as stored, its IBAN opened."""

    id: int
    creditor: str
    reference: str
    debtor: str
    iban: str
    bic: str
    scheme: int
    signed_on: str
    state: int
    created_at: int
    acknowledged_at: int
    revoked_at: int
    uses: int
    last_declaration: str
    last_used_on: str

    def lapsed(self, today: date | None = None) -> bool:
        """Whether the acknowledged mandate lapsed: no use for LAPSE_YEARS (36 months) since
        its last use or, never used, its signature (SEPA rulebook)."""
        return self.state == ACKNOWLEDGED and max(self.signed_on, self.last_used_on) <= (
            lapse_cutoff(today)
        )


# What a creditor is given: a mandate once acknowledged (still, or revoked since: marked so by
# its state); a pending one, or one cancelled before acknowledgement, never reaches it.
GIVEN = mandates.c.acknowledged_at > 0

_COLUMNS = [mandates.c[name] for name in (
    "id", "creditor", "reference", "debtor", "iban_sealed", "bic", "scheme", "signed_on",
    "state", "created_at", "acknowledged_at", "revoked_at", "uses", "last_declaration",
    "last_used_on",
)]  # fmt: skip


def lapse_cutoff(today: date | None = None) -> str:
    """The last activity date (YYYY-MM-DD) at or before which a mandate has lapsed today."""
    today = today or datetime.now(UTC).date()
    day = 28 if (today.month, today.day) == (2, 29) else today.day
    return today.replace(year=today.year - LAPSE_YEARS, day=day).isoformat()


def _associated(creditor: str, reference: str) -> bytes:
    return f"mandate-iban\0{creditor}\0{reference}".encode()


def check_signature_date(value: str, today: date | None = None) -> str:
    """The signature date, YYYY-MM-DD, a real date from SEPA_START, not after today (UTC)."""
    try:
        signed = date.fromisoformat(value)
    except ValueError:
        raise MandateRefused("BAD_SIGNATURE_DATE", "not a date", "signed_on") from None
    if signed < SEPA_START:
        raise MandateRefused("BAD_SIGNATURE_DATE", "the signature date is before SEPA direct "
                             "debit began (2009-11-01)", "signed_on")  # fmt: skip
    if signed > (today or datetime.now(UTC).date()):
        raise MandateRefused("BAD_SIGNATURE_DATE", "the signature date is in the future",
                             "signed_on")  # fmt: skip
    return signed.isoformat()


class MandateStore:
    """Mandates and creditors in the database."""

    def __init__(self, engine: Engine, data_key: bytes, banks: BankReference | None = None):
        self.engine = engine
        self.aead = AESGCM(data_key)
        self.banks = banks
        # Keyed so that the digest stored with a retry key says nothing of the IBAN.
        self._digest_key = hmac.new(data_key, b"mandate-request", hashlib.sha256).digest()

    def _request_digest(self, new: NewMandate) -> str:
        """The digest of what a creation asks, as given: a retry under the same request id
        must ask the same."""
        fields = (new.debtor, new.creditor, new.reference, new.iban, new.bic, str(new.scheme),
                  new.signed_on)  # fmt: skip
        return hmac.new(self._digest_key, "\0".join(fields).encode(), hashlib.sha256).hexdigest()

    def _repeated(self, request_key: str, digest: str) -> MandateRecord | None:
        """The mandate entered by this request key, or None; REQUEST_ID_REUSED when that
        request asked something else."""
        with reading(self.engine) as connection:
            row = connection.execute(
                select(*_COLUMNS, mandates.c.request_digest).where(
                    mandates.c.request_key == request_key
                )
            ).first()
        if row is None:
            return None
        if not hmac.compare_digest(str(row.request_digest or ""), digest):
            raise MandateRefused("REQUEST_ID_REUSED", "this request id was used for another "
                                 "mandate")  # fmt: skip
        return self._record(tuple(row)[: len(_COLUMNS)])

    # -- creditors ---------------------------------------------------------------------------

    def register_creditor(
        self, code: str, identifier: str, name: str = "", address: str = ""
    ) -> Creditor:
        """Registers (or updates) a creditor with its SEPA identifier, checked, and its postal
        address (lines separated by newlines, printed on its mandates)."""
        try:
            compact = check_creditor_identifier(identifier)
        except BankDetailsError as error:
            raise MandateRefused(error.reason, str(error), error.field) from None
        address = "\n".join(line.strip() for line in address.splitlines() if line.strip())
        values: dict[str, object] = {"identifier": compact, "name": name or code,
                                     "address": address, "changed_at": now_ms()}  # fmt: skip
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(mandate_creditors).where(mandate_creditors.c.code == code).values(values)
            ).rowcount
            if not changed:
                connection.execute(insert(mandate_creditors).values(code=code, **values))
        return Creditor(code, compact, name or code, address)

    def creditor(self, code: str) -> Creditor | None:
        """The registered creditor of this code, or None."""
        with reading(self.engine) as connection:
            row = connection.execute(
                select(
                    mandate_creditors.c.identifier,
                    mandate_creditors.c.name,
                    mandate_creditors.c.address,
                ).where(mandate_creditors.c.code == code)
            ).first()
        return Creditor(code, str(row.identifier), str(row.name), str(row.address)) if row else None

    def creditors(self) -> list[Creditor]:
        """Every registered creditor, by code."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(mandate_creditors.c.code, mandate_creditors.c.identifier,
                       mandate_creditors.c.name, mandate_creditors.c.address)
                .order_by(mandate_creditors.c.code)
            ).all()  # fmt: skip
        return [Creditor(*row) for row in rows]

    # -- mandates ----------------------------------------------------------------------------

    def _record(self, row: tuple[object, ...]) -> MandateRecord:
        (id_, creditor, reference, debtor, sealed, *rest) = row
        assert isinstance(sealed, bytes)
        iban = unseal(self.aead, sealed, _associated(str(creditor), str(reference))).decode()
        bic, scheme, signed_on, state, created, acknowledged, revoked, uses, last, used_on = rest
        return MandateRecord(
            int(str(id_)), str(creditor), str(reference), str(debtor), iban, str(bic),
            int(str(scheme)), str(signed_on), int(str(state)), int(str(created)),
            int(str(acknowledged)), int(str(revoked)), int(str(uses)), str(last), str(used_on),
        )  # fmt: skip

    def _checked_iban(self, iban: str) -> str:
        try:
            compact = check_iban(iban)
        except BankDetailsError as error:
            raise MandateRefused(error.reason, str(error), error.field) from None
        bank = french_bank_code(compact)
        if bank is not None and self.banks is not None and self.banks.knows(bank) is False:
            raise MandateRefused(UNKNOWN_BANK, "the IBAN's bank code is not in the bank "
                                 "reference", "iban")  # fmt: skip
        return compact

    def create(self, new: NewMandate, request_key: str = "") -> tuple[MandateRecord, bool]:
        """Enters a PENDING mandate, every detail checked; (it, False), or (the mandate of the
        same request key, True). MANDATE_REFERENCE_TAKEN when the creditor has the reference;
        REQUEST_ID_REUSED when the request key entered a mandate with other fields."""
        debtor, creditor, reference = new.debtor, new.creditor, new.reference
        digest = self._request_digest(new)
        if reference and not reference.startswith(debtor[:9]):
            # A reference of the debtor's own SIREN space: no company squats, nor learns
            # (MANDATE_REFERENCE_TAKEN), another one's references.
            raise MandateRefused(REFERENCE_PREFIX, "the reference must begin with the debtor's "
                                 "SIREN", "reference")  # fmt: skip
        if request_key and (earlier := self._repeated(request_key, digest)) is not None:
            return earlier, True
        if self.creditor(creditor) is None:
            raise MandateRefused("UNKNOWN_CREDITOR", f"{creditor} is not a registered creditor",
                                 "creditor")  # fmt: skip
        compact = self._checked_iban(new.iban)
        try:
            checked_bic = check_bic(new.bic)
            check_bic_country(compact, checked_bic)
        except BankDetailsError as error:
            raise MandateRefused(error.reason, str(error), error.field) from None
        signed = check_signature_date(new.signed_on)
        reference = reference or f"{debtor[:9]}-IOPS-{secrets.token_hex(6).upper()}"
        values = {
            "creditor": creditor, "reference": reference, "debtor": debtor,
            "debtor_siren": debtor[:9],
            "iban_sealed": seal(self.aead, compact.encode(), _associated(creditor, reference)),
            "bic": checked_bic, "scheme": new.scheme, "signed_on": signed, "state": PENDING,
            "created_at": now_ms(), "acknowledged_at": 0, "revoked_at": 0, "uses": 0,
            "last_declaration": "", "last_used_on": "", "request_key": request_key or None,
            "request_digest": digest if request_key else None,
        }  # fmt: skip
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(mandates).values(values))
        except IntegrityError:
            if request_key and (earlier := self._repeated(request_key, digest)) is not None:
                return earlier, True  # the same request, raced
            raise MandateRefused("MANDATE_REFERENCE_TAKEN", f"{creditor} has a mandate "
                                 f"{reference} already", "reference") from None  # fmt: skip
        found = self.get(creditor, reference)
        assert found is not None
        return found, False

    def get(self, creditor: str, reference: str, *, given: bool = False) -> MandateRecord | None:
        """The creditor's mandate of this reference, or None; `given`: only once acknowledged
        (what a creditor may see, GIVEN)."""
        query = select(*_COLUMNS).where(
            mandates.c.creditor == creditor, mandates.c.reference == reference
        )
        if given:
            query = query.where(GIVEN)
        with reading(self.engine) as connection:
            row = connection.execute(query).first()
        return self._record(tuple(row)) if row else None

    def _move(self, mandate: MandateRecord, source: int, values: dict[str, object]) -> bool:
        with self.engine.begin() as connection:
            return bool(
                connection.execute(
                    update(mandates)
                    .where(mandates.c.id == mandate.id, mandates.c.state == source)
                    .values(values)
                ).rowcount
            )

    def acknowledge(self, mandate: MandateRecord) -> MandateRecord:
        """Acknowledges a PENDING mandate (an acknowledged one is answered as it is);
        MANDATE_REVOKED for a revoked one."""
        if mandate.state == PENDING:
            self._move(mandate, PENDING, {"state": ACKNOWLEDGED, "acknowledged_at": now_ms()})
        return self._again(mandate, (ACKNOWLEDGED,))

    def revoke(self, mandate: MandateRecord) -> MandateRecord:
        """Revokes an ACKNOWLEDGED mandate, or cancels a PENDING one (it then never reaches a
        creditor: acknowledged_at stays 0); a revoked one is answered as it is."""
        if mandate.state in (PENDING, ACKNOWLEDGED):
            self._move(mandate, mandate.state, {"state": REVOKED, "revoked_at": now_ms()})
        return self._again(mandate, (REVOKED,))

    def _again(self, mandate: MandateRecord, wanted: tuple[int, ...]) -> MandateRecord:
        found = self.get(mandate.creditor, mandate.reference)
        assert found is not None
        if found.state not in wanted:
            raise _state_refusal(found)
        return found

    def use(self, mandate: MandateRecord, declaration: str) -> tuple[MandateRecord, bool]:
        """Records that the ACKNOWLEDGED mandate pays `declaration`; (mandate, True) when it
        was recorded already. MANDATE_NOT_ACKNOWLEDGED or MANDATE_REVOKED otherwise, and
        MANDATE_LAPSED for one unused for 36 months (a use would bring it back to life)."""
        if mandate.state != ACKNOWLEDGED:
            raise _state_refusal(mandate)
        if mandate.lapsed():
            raise MandateRefused(
                "MANDATE_LAPSED",
                f"mandate {mandate.reference} lapsed: unused for {LAPSE_YEARS * 12} months; "
                "a new one must be signed",
            )
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(mandate_uses).values(
                    mandate_id=mandate.id, declaration=declaration, used_at=now_ms()
                ))  # fmt: skip
                moved = connection.execute(
                    update(mandates)
                    .where(mandates.c.id == mandate.id, mandates.c.state == ACKNOWLEDGED)
                    .values(
                        uses=mandates.c.uses + 1,
                        last_declaration=declaration,
                        last_used_on=datetime.now(UTC).date().isoformat(),
                    )
                ).rowcount
                if not moved:  # revoked meanwhile (its one way out): the use is not recorded
                    raise MandateRefused("MANDATE_REVOKED", f"mandate {mandate.reference} is "
                                         "revoked")  # fmt: skip
        except IntegrityError:
            return self._again(mandate, (ACKNOWLEDGED, REVOKED)), True
        return self._again(mandate, (ACKNOWLEDGED, REVOKED)), False

    def search(
        self,
        *,
        debtor: str = "",
        creditor: str = "",
        reference: str = "",
        state: int = 0,
        after: tuple[str, str] | None = None,
        limit: int = 100,
        given: bool = False,
    ) -> list[MandateRecord]:
        """Mandates by debtor (a SIREN takes its establishments'), creditor, reference and
        state, ordered by (creditor, reference), after the key `after`; `given`: only those a
        creditor may see (GIVEN)."""
        query: Select[tuple[object, ...]] = select(*_COLUMNS)
        if given:
            query = query.where(GIVEN)
        if len(debtor) == 9:
            query = query.where(mandates.c.debtor_siren == debtor)
        elif debtor:
            query = query.where(mandates.c.debtor == debtor)
        if creditor:
            query = query.where(mandates.c.creditor == creditor)
        if reference:
            query = query.where(mandates.c.reference == reference)
        if state:
            query = query.where(mandates.c.state == state)
        if after is not None:
            query = query.where(or_(mandates.c.creditor > after[0], and_(
                mandates.c.creditor == after[0], mandates.c.reference > after[1]
            )))  # fmt: skip
        query = query.order_by(mandates.c.creditor, mandates.c.reference).limit(limit)
        with reading(self.engine) as connection:
            rows = connection.execute(query).all()
        return [self._record(tuple(row)) for row in rows]

    # -- extractions -------------------------------------------------------------------------

    def claim_extraction(self, operation_id: str, creditor: str) -> str:
        """Notes the operation as the creditor's running extraction; the id of the one that
        runs: this one, or another the creditor started (racing or earlier), to answer."""
        values = {"operation_id": operation_id, "creditor": creditor,
                  "running_creditor": creditor, "created_at": now_ms(), "purged_at": 0}  # fmt: skip
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(mandate_extractions).values(values))
        except IntegrityError:
            running = self.running_extraction(creditor)
            return running or operation_id
        return operation_id

    def running_extraction(self, creditor: str) -> str | None:
        """The creditor's extraction under way, or None."""
        with reading(self.engine) as connection:
            found = connection.execute(
                select(mandate_extractions.c.operation_id).where(
                    mandate_extractions.c.running_creditor == creditor
                )
            ).scalar()
        return str(found) if found is not None else None

    def release_extraction(self, operation_id: str) -> None:
        """The extraction is done (succeeded or failed): the creditor may start another."""
        with self.engine.begin() as connection:
            connection.execute(
                update(mandate_extractions)
                .where(mandate_extractions.c.operation_id == operation_id)
                .values(running_creditor=None)
            )

    def extractions_to_purge(self, before_ms: int) -> list[str]:
        """Finished extractions made before `before_ms` whose file is still kept."""
        with reading(self.engine) as connection:
            return [str(found) for found in connection.execute(
                select(mandate_extractions.c.operation_id).where(
                    mandate_extractions.c.created_at < before_ms,
                    mandate_extractions.c.purged_at == 0,
                    mandate_extractions.c.running_creditor.is_(None),
                )
            ).scalars()]  # fmt: skip

    def mark_purged(self, operation_id: str) -> None:
        """Its file was deleted."""
        with self.engine.begin() as connection:
            connection.execute(
                update(mandate_extractions)
                .where(mandate_extractions.c.operation_id == operation_id)
                .values(purged_at=now_ms())
            )

    def extraction_purged(self, operation_id: str) -> bool:
        """Whether the extraction's file was deleted after the retention."""
        with reading(self.engine) as connection:
            return bool(connection.execute(
                select(mandate_extractions.c.purged_at).where(
                    mandate_extractions.c.operation_id == operation_id
                )
            ).scalar())  # fmt: skip

    def extraction_creditor(self, operation_id: str) -> str | None:
        """The creditor whose extraction the operation is, or None."""
        with reading(self.engine) as connection:
            found = connection.execute(
                select(mandate_extractions.c.creditor).where(
                    mandate_extractions.c.operation_id == operation_id
                )
            ).scalar()
        return str(found) if found is not None else None

    def count(self, creditor: str) -> int:
        """How many mandates the creditor was given (GIVEN)."""
        with reading(self.engine) as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(mandates)
                    .where(mandates.c.creditor == creditor, GIVEN)
                ).scalar()
                or 0
            )

    def extract(
        self, creditor: str, progress: Callable[[int], None] | None = None
    ) -> Iterator[bytes]:
        """The creditor's mandates given to it (GIVEN) as CSV (EXTRACT_HEADER; an acknowledged
        mandate that lapsed has the state LAPSED), by reference, in pieces of about
        EXTRACT_BATCH lines; `progress` hears the count after each piece. Reads with a server
        side cursor, so memory holds one batch whatever the count."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXTRACT_HEADER)
        decrypt, done = self.aead.decrypt, 0
        prefix = _associated(creditor, "")
        query = (
            select(*_COLUMNS)
            .where(mandates.c.creditor == creditor, GIVEN)
            .order_by(mandates.c.reference)
            .execution_options(yield_per=EXTRACT_BATCH)
        )
        scheme_names = {
            v.number: v.name.removeprefix("SCHEME_") for v in pb.Scheme.DESCRIPTOR.values
        }
        state_names = {
            v.number: v.name.removeprefix("MANDATE_STATE_")
            for v in pb.MandateState.DESCRIPTOR.values
        }
        cutoff = lapse_cutoff()
        with self.engine.connect() as connection:
            for rows in connection.execute(query).partitions():
                # One C call per batch; the IBAN opened inline (this loop is the extraction's
                # cost: bench/mandate_extract.py).
                writer.writerows(
                    (reference, debtor, decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                                prefix + reference.encode()).decode(),
                     bic, scheme_names[scheme], signed_on,
                     LAPSED if state == ACKNOWLEDGED and max(signed_on, used_on) <= cutoff
                     else state_names[state], _iso(acknowledged), _iso(revoked), uses)
                    for (_, _, reference, debtor, sealed, bic, scheme, signed_on, state, _,
                         acknowledged, revoked, uses, _, used_on) in rows
                )  # fmt: skip
                done += len(rows)
                yield out.getvalue().encode()
                out.seek(0)
                out.truncate()
                if progress is not None:
                    progress(done)
        rest = out.getvalue()
        if rest:
            yield rest.encode()


def _iso(milliseconds: int) -> str:
    """ISO 8601 UTC to the second ("" for 0); time.strftime over gmtime: datetime's strftime
    cost a fifth of an extraction."""
    if not milliseconds:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(milliseconds // 1000))


def _state_refusal(mandate: MandateRecord) -> MandateRefused:
    if mandate.state == REVOKED:
        return MandateRefused("MANDATE_REVOKED", f"mandate {mandate.reference} is revoked")
    return MandateRefused("MANDATE_NOT_ACKNOWLEDGED",
                          f"mandate {mandate.reference} is not acknowledged")  # fmt: skip
