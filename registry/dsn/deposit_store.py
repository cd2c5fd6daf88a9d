"""Storage of DSN deposits, of each organism's delivery (the outbox, with leases) and of the
returns. Every change of a deposit or of one of its deliveries bumps the deposit's version, which
WatchDeposit follows.

A return's content is sealed in its row with the node's data key: CRMs name employees.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from registry.dsn.schema import deliveries, deposit_returns, deposits
from registry.kernel.clock import now_ms
from registry.kernel.sealing import seal, unseal

RECEIVED, VALIDATED, REJECTED, ROUTED = "RECEIVED", "VALIDATED", "REJECTED", "ROUTED"
PENDING, SENT, ACKNOWLEDGED = "PENDING", "SENT", "ACKNOWLEDGED"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One organism's part of a deposit."""

    id: str
    deposit_id: str
    organism: str
    state: str
    priority: int
    nature: str
    size: int
    sha256: bytes
    attempts: int
    lease_id: str | None
    lease_until: int
    created_at: int
    acknowledged_at: int
    receipt_key_id: str | None
    receipt_signature: bytes | None
    trace_parent: str


@dataclass(frozen=True, slots=True)
class DepositRecord:
    """A deposit as stored, with its deliveries when read with them."""

    id: str
    declarant: str
    request_id: str | None
    file_name: str
    size: int
    sha256: bytes
    state: str
    receipt: str
    rejection_code: str
    rejection_message: str
    norm_version: str
    nature: str
    type: str
    month: str
    sirets: tuple[str, ...]
    individuals: int
    blocking: int
    warnings: int
    priority: int
    received_at: int
    updated_at: int
    version: int
    trace_parent: str
    deliveries: tuple[DeliveryRecord, ...] = ()

    @property
    def finished(self) -> bool:
        """Rejected, or routed with every delivery acknowledged: nothing more will change."""
        if self.state == REJECTED:
            return True
        return self.state == ROUTED and all(d.state == ACKNOWLEDGED for d in self.deliveries)


@dataclass(frozen=True, slots=True)
class ReturnRecord:
    """A return; `payload` is the plaintext the server serialized (content and PAS rates)."""

    position: int
    id: str
    deposit_id: str
    declarant: str
    organism: str
    kind: str
    code: str
    status: int
    payload: bytes
    created_at: int


@dataclass(frozen=True, slots=True)
class NewDeposit:
    """What SubmitDeposit knows before storing."""

    declarant: str
    request_id: str | None
    file_name: str
    size: int
    sha256: bytes
    receipt: str = "AEE"
    rejection_code: str = ""
    rejection_message: str = ""
    norm_version: str = ""
    nature: str = ""
    type: str = ""
    month: str = ""
    sirets: tuple[str, ...] = ()
    trace_parent: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class Validated:
    """The outcome of validation, as the pipeline stores it."""

    conformant: bool
    norm_version: str
    nature: str
    type: str
    month: str
    sirets: tuple[str, ...]
    individuals: int
    blocking: int
    warnings: int
    rejection_code: str = ""
    rejection_message: str = ""


@dataclass(frozen=True, slots=True)
class RoutedShare:
    """One organism's share as written by the router."""

    organism: str
    size: int
    sha256: bytes


def _delivery(row: Sequence[object]) -> DeliveryRecord:
    return DeliveryRecord(*row)  # type: ignore[arg-type]


def _deposit(row: Sequence[object], found: tuple[DeliveryRecord, ...] = ()) -> DepositRecord:
    values = list(row)
    values[14] = tuple(json.loads(str(values[14])))
    return DepositRecord(*values, found)  # type: ignore[arg-type, call-arg]


_DEPOSIT_COLUMNS = [deposits.c[f.name] for f in fields(DepositRecord) if f.name != "deliveries"]
_DELIVERY_COLUMNS = [deliveries.c[f.name] for f in fields(DeliveryRecord)]
_RETURN_COLUMNS = [deposit_returns.c[f.name] for f in fields(ReturnRecord) if f.name != "payload"]


class DepositStore:
    """Deposits, deliveries and returns in the database."""

    def __init__(self, engine: Engine, data_key: bytes) -> None:
        self.engine = engine
        self.aead = AESGCM(data_key)

    # -- deposits --------------------------------------------------------------------------

    def find(self, declarant: str, request_id: str | None, sha256: bytes) -> DepositRecord | None:
        """The declarant's deposit with that request id, else the one taken (AEE) with that
        content."""
        with self.engine.connect() as connection:
            if request_id:
                row = connection.execute(
                    select(*_DEPOSIT_COLUMNS).where(
                        deposits.c.declarant == declarant, deposits.c.request_id == request_id
                    )
                ).first()
                if row is not None:
                    return self._with_deliveries(connection, row)
            # A refused file (ARE) may come again once what refused it is fixed.
            row = connection.execute(
                select(*_DEPOSIT_COLUMNS)
                .where(
                    deposits.c.declarant == declarant,
                    deposits.c.sha256 == sha256,
                    deposits.c.receipt == "AEE",
                )
                .order_by(deposits.c.received_at)
                .limit(1)
            ).first()
            return self._with_deliveries(connection, row) if row is not None else None

    def create(self, new: NewDeposit) -> tuple[DepositRecord, bool]:
        """Stores a deposit; (the stored one, False) when a concurrent retry stored it first."""
        moment = now_ms()
        state = REJECTED if new.receipt == "ARE" else RECEIVED
        values = {
            "id": new.id, "declarant": new.declarant, "request_id": new.request_id or None,
            "file_name": new.file_name, "size": new.size, "sha256": new.sha256, "state": state,
            "receipt": new.receipt, "rejection_code": new.rejection_code,
            "rejection_message": new.rejection_message[:500], "norm_version": new.norm_version,
            "nature": new.nature, "type": new.type, "month": new.month,
            "sirets": json.dumps(list(new.sirets)), "individuals": 0, "blocking": 0,
            "warnings": 0, "priority": 0 if new.nature in ("04", "05", "07") else 1,
            "received_at": moment, "updated_at": moment, "version": 1,
            "trace_parent": new.trace_parent,
        }  # fmt: skip
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(deposits).values(**values))
        except IntegrityError:
            existing = self.find(new.declarant, new.request_id, new.sha256)
            if existing is None:
                raise
            return existing, False
        record = self.get(new.id)
        assert record is not None
        return record, True

    def get(self, deposit_id: str, declarant: str | None = None) -> DepositRecord | None:
        """A deposit with its deliveries (None if absent, or not the declarant's)."""
        query = select(*_DEPOSIT_COLUMNS).where(deposits.c.id == deposit_id)
        if declarant is not None:
            query = query.where(deposits.c.declarant == declarant)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
            return self._with_deliveries(connection, row) if row is not None else None

    def version(self, deposit_id: str) -> int:
        """The deposit's current version (0 if absent)."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(deposits.c.version).where(deposits.c.id == deposit_id)
            ).scalar()
        return int(value or 0)

    def list_for(
        self, declarant: str, limit: int, before: tuple[int, str] | None = None
    ) -> list[DepositRecord]:
        """The declarant's deposits, newest first, after the cursor (received_at, id)."""
        query = select(*_DEPOSIT_COLUMNS).where(deposits.c.declarant == declarant)
        if before is not None:
            moment, last_id = before
            query = query.where(
                or_(
                    deposits.c.received_at < moment,
                    and_(deposits.c.received_at == moment, deposits.c.id < last_id),
                )
            )
        query = query.order_by(deposits.c.received_at.desc(), deposits.c.id.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            return [self._with_deliveries(connection, row) for row in rows]

    def unfinished(self) -> list[tuple[str, str]]:
        """(id, state) of deposits whose validation or routing is still to do, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(deposits.c.id, deposits.c.state)
                .where(deposits.c.state.in_((RECEIVED, VALIDATED)))
                .order_by(deposits.c.priority, deposits.c.received_at)
            ).all()
        return [(str(row[0]), str(row[1])) for row in rows]

    def _with_deliveries(self, connection: Connection, row: Sequence[object]) -> DepositRecord:
        found = connection.execute(
            select(*_DELIVERY_COLUMNS)
            .where(deliveries.c.deposit_id == row[0])
            .order_by(deliveries.c.organism)
        ).all()
        return _deposit(row, tuple(_delivery(r) for r in found))

    @staticmethod
    def _bump(connection: Connection, deposit_id: str, **values: object) -> None:
        connection.execute(
            update(deposits)
            .where(deposits.c.id == deposit_id)
            .values(updated_at=now_ms(), version=deposits.c.version + 1, **values)
        )

    def record_validation(self, deposit_id: str, outcome: Validated, report: bytes) -> None:
        """Stores the validation's outcome and its CCO or BAN as the first return, at once."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(deposits.c.state, deposits.c.declarant)
                .where(deposits.c.id == deposit_id)
                .with_for_update()
            ).first()
            if row is None or row[0] != RECEIVED:
                return  # done already (a retry after a crash between commit and the caller)
            self._bump(
                connection, deposit_id,
                state=VALIDATED if outcome.conformant else REJECTED,
                norm_version=outcome.norm_version, nature=outcome.nature, type=outcome.type,
                month=outcome.month, sirets=json.dumps(list(outcome.sirets)),
                individuals=outcome.individuals, blocking=outcome.blocking,
                warnings=outcome.warnings, rejection_code=outcome.rejection_code,
                rejection_message=outcome.rejection_message[:500],
                priority=0 if outcome.nature in ("04", "05", "07") else 1,
            )  # fmt: skip
            self._insert_return(
                connection, deposit_id, str(row[1]), "",
                kind="CCO" if outcome.conformant else "BAN", code="",
                status=1 if outcome.conformant else 4, request_id=None, payload=report,
            )  # fmt: skip

    def record_routing(self, deposit_id: str, shares: Sequence[RoutedShare]) -> None:
        """Writes the outbox (one delivery per organism concerned) and ROUTED, at once."""
        moment = now_ms()
        with self.engine.begin() as connection:
            row = connection.execute(
                select(
                    deposits.c.state,
                    deposits.c.priority,
                    deposits.c.nature,
                    deposits.c.trace_parent,
                )
                .where(deposits.c.id == deposit_id)
                .with_for_update()
            ).first()
            if row is None or row[0] != VALIDATED:
                return
            for share in shares:
                connection.execute(
                    insert(deliveries).values(
                        id=delivery_id(deposit_id, share.organism),
                        deposit_id=deposit_id,
                        organism=share.organism,
                        state=PENDING,
                        priority=row[1],
                        nature=row[2],
                        size=share.size,
                        sha256=share.sha256,
                        attempts=0,
                        lease_id=None,
                        lease_until=0,
                        created_at=moment,
                        acknowledged_at=0,
                        receipt_key_id=None,
                        receipt_signature=None,
                        trace_parent=row[3],
                    )
                )
            self._bump(connection, deposit_id, state=ROUTED)

    # -- deliveries ------------------------------------------------------------------------

    def lease(self, organism: str, limit: int, lease_ms: int) -> list[DeliveryRecord]:
        """Leases up to `limit` of the organism's deliveries that are pending or whose lease
        ran out, events first, oldest first."""
        moment = now_ms()
        with self.engine.begin() as connection:
            ids = connection.execute(
                select(deliveries.c.id, deliveries.c.deposit_id)
                .where(
                    deliveries.c.organism == organism,
                    or_(
                        deliveries.c.state == PENDING,
                        and_(deliveries.c.state == SENT, deliveries.c.lease_until < moment),
                    ),
                )
                .order_by(deliveries.c.priority, deliveries.c.created_at, deliveries.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for delivery, deposit_id in ids:
                connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery)
                    .values(
                        state=SENT,
                        lease_id=uuid.uuid4().hex,
                        lease_until=moment + lease_ms,
                        attempts=deliveries.c.attempts + 1,
                    )
                )
                self._bump(connection, deposit_id)
            if not ids:
                return []
            rows = connection.execute(
                select(*_DELIVERY_COLUMNS)
                .where(deliveries.c.id.in_([row[0] for row in ids]))
                .order_by(deliveries.c.priority, deliveries.c.created_at, deliveries.c.id)
            ).all()
        return [_delivery(row) for row in rows]

    def delivery(self, delivery: str) -> DeliveryRecord | None:
        """One delivery."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(*_DELIVERY_COLUMNS).where(deliveries.c.id == delivery)
            ).first()
        return _delivery(row) if row is not None else None

    def acknowledge(self, delivery: str, key_id: str, signature: bytes) -> DeliveryRecord:
        """Marks a delivery acknowledged with its receipt (a second acknowledgement keeps the
        first receipt)."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(deliveries.c.state, deliveries.c.deposit_id)
                .where(deliveries.c.id == delivery)
                .with_for_update()
            ).first()
            if row is not None and row[0] != ACKNOWLEDGED:
                connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery)
                    .values(
                        state=ACKNOWLEDGED,
                        acknowledged_at=now_ms(),
                        lease_until=0,
                        receipt_key_id=key_id,
                        receipt_signature=signature,
                    )
                )
                self._bump(connection, str(row[1]))
        found = self.delivery(delivery)
        assert found is not None
        return found

    # -- returns ---------------------------------------------------------------------------

    def _seal(self, return_id: str, payload: bytes) -> bytes:
        return seal(self.aead, payload, return_id.encode())

    def _open(self, return_id: str, sealed: bytes) -> bytes:
        return unseal(self.aead, sealed, return_id.encode())

    def _insert_return(
        self, connection: Connection, deposit_id: str, declarant: str, organism: str, *,
        kind: str, code: str, status: int, request_id: str | None, payload: bytes,
    ) -> str:  # fmt: skip
        return_id = uuid.uuid4().hex
        connection.execute(
            insert(deposit_returns).values(
                id=return_id,
                deposit_id=deposit_id,
                declarant=declarant,
                organism=organism,
                kind=kind,
                code=code,
                status=status,
                request_id=request_id,
                sealed=self._seal(return_id, payload),
                created_at=now_ms(),
            )
        )
        return return_id

    def add_return(
        self, deposit_id: str, organism: str, *, code: str, status: int, request_id: str | None,
        payload: bytes,
    ) -> tuple[ReturnRecord, bool]:  # fmt: skip
        """Stores an organism's CRM; (the stored one, False) when the request id was used."""
        if request_id:
            existing = self._return_by_request(organism, request_id)
            if existing is not None:
                return existing, False
        declarant = self.get(deposit_id)
        assert declarant is not None
        try:
            with self.engine.begin() as connection:
                return_id = self._insert_return(
                    connection, deposit_id, declarant.declarant, organism, kind="CRM", code=code,
                    status=status, request_id=request_id or None, payload=payload,
                )  # fmt: skip
        except IntegrityError:
            existing = self._return_by_request(organism, request_id or "")
            if existing is None:
                raise
            return existing, False
        found = self._returns(deposit_returns.c.id == return_id, limit=1)
        return found[0], True

    def _return_by_request(self, organism: str, request_id: str) -> ReturnRecord | None:
        found = self._returns(
            and_(
                deposit_returns.c.organism == organism, deposit_returns.c.request_id == request_id
            ),
            limit=1,
        )
        return found[0] if found else None

    def returns_for(
        self, declarant: str, after_position: int, limit: int, deposit_id: str = ""
    ) -> list[ReturnRecord]:
        """The declarant's returns after a position (of one deposit when given), oldest first."""
        condition = and_(
            deposit_returns.c.declarant == declarant, deposit_returns.c.position > after_position
        )
        if deposit_id:
            condition = and_(condition, deposit_returns.c.deposit_id == deposit_id)
        return self._returns(condition, limit)

    def _returns(self, condition: object, limit: int) -> list[ReturnRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*_RETURN_COLUMNS, deposit_returns.c.sealed)
                .where(condition)  # type: ignore[arg-type]
                .order_by(deposit_returns.c.position)
                .limit(limit)
            ).all()
        found = []
        for row in rows:
            *head, created, sealed = row
            position, return_id, deposit_id, declarant, organism, kind, code, status = head
            payload = self._open(str(return_id), bytes(sealed))
            found.append(ReturnRecord(
                int(position), str(return_id), str(deposit_id), str(declarant), str(organism),
                str(kind), str(code), int(status), payload, int(created),
            ))  # fmt: skip
        return found


def delivery_id(deposit_id: str, organism: str) -> str:
    """The stable id of an organism's delivery of a deposit."""
    return f"{deposit_id}.{organism}"
