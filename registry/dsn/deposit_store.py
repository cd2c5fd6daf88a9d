"""Storage of DSN deposits: each deposit's file sealed with the node's key and each organism's
share sealed to that organism's encryption key (token_suite/sealed_share.py: the node cannot
read a share back), kept on the node's disk or in the database every node shares
(registry/kernel/blob_store.py), the deposits, each organism's delivery (the outbox, with
leases) and the returns in the database.
Every change of a deposit or of one of its deliveries bumps the deposit's version, which
WatchDeposit follows.

The states, receipts and kinds below are stored by name; each is the interops.dsn.v1 enum value
of the same name, and `to_proto` is the one place that says so. A return's body is stored as a
serialized interops.dsn.v1 Return, sealed in its row with the node's data key: CRMs name employees.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from interops.dsn.v1 import dsn_pb2 as pb
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from registry.dsn.schema import deliveries, deposit_returns, deposits
from registry.kernel.blob_store import BlobStore, BlobWriter, commit_all_in
from registry.kernel.clock import now_ms, timestamp
from registry.kernel.contract_enums import contract_value
from registry.kernel.database import reading
from registry.kernel.sealing import SealedWriter, open_sealed, seal, unseal
from token_suite.directory import KeyEntry
from token_suite.sealed_share import ShareWriter


class DepositState(StrEnum):
    """Where a deposit is: RECEIVED (taken, AEE) -> VALIDATED -> ROUTED, or REJECTED (an ARE at
    once, or a BAN after validation). REJECTED and ROUTED are final."""

    RECEIVED = "RECEIVED"
    VALIDATED = "VALIDATED"
    REJECTED = "REJECTED"
    ROUTED = "ROUTED"

    def to_proto(self) -> pb.DepositState.ValueType:
        """The interops.dsn.v1.DepositState of the same name."""
        return contract_value(pb.DepositState, self.name)


class DeliveryState(StrEnum):
    """Where an organism's delivery is: PENDING -> SENT (leased; leased again when its lease
    runs out) -> ACKNOWLEDGED (a signed receipt; final)."""

    PENDING = "PENDING"
    SENT = "SENT"
    ACKNOWLEDGED = "ACKNOWLEDGED"

    def to_proto(self) -> pb.DeliveryState.ValueType:
        """The interops.dsn.v1.DeliveryState of the same name."""
        return contract_value(pb.DeliveryState, self.name)


class Receipt(StrEnum):
    """The answer a deposit gets at once: AEE (taken) or ARE (refused as a whole)."""

    AEE = "AEE"
    ARE = "ARE"

    def to_proto(self) -> pb.Receipt.ValueType:
        """The interops.dsn.v1.Receipt of the same name."""
        return contract_value(pb.Receipt, self.name)


class ReturnKind(StrEnum):
    """A return: the validation's CCO (conformant) or BAN (anomalies), or an organism's CRM."""

    CCO = "CCO"
    BAN = "BAN"
    CRM = "CRM"

    def to_proto(self) -> pb.ReturnKind.ValueType:
        """The interops.dsn.v1.ReturnKind of the same name."""
        return contract_value(pb.ReturnKind, self.name)


# The statuses of the validation's own returns (interops.dsn.v1.ReturnStatus).
_CCO_STATUS, _BAN_STATUS = pb.RETURN_STATUS_ACCEPTED, pb.RETURN_STATUS_REJECTED


class NoEncryptionKey(LookupError):
    """The organism has published no encryption key in use: its share cannot be sealed yet
    (the deposit is routed again later, once it has)."""

    def __init__(self, organism: str) -> None:
        super().__init__(f"{organism} has no encryption key in the directory")
        self.organism = organism


class ShareFile:
    """An organism's share being written, sealed to its encryption key `key_id`: put in place
    whole on close, or not at all. `size` and `sha256` describe the plaintext (what the
    delivery announces and the receipt signs)."""

    def __init__(self, out: BlobWriter, delivery_id: str, key: KeyEntry) -> None:
        self.key_id = key.key_id
        self.out = out
        try:
            # write() is all the sealer uses of its output.
            self.sealer = ShareWriter(
                out,  # type: ignore[arg-type]
                delivery_id, key.key_id, key.public,
            )  # fmt: skip
        except BaseException:
            self.discard()
            raise

    def write(self, data: bytes) -> int:
        """Appends plaintext."""
        return self.sealer.write(data)

    @property
    def size(self) -> int:
        """Plaintext bytes written so far."""
        return self.sealer.size

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the plaintext written so far."""
        return self.sealer.sha256

    def close(self) -> None:
        """Seals the last chunk and puts the share in place."""
        self.sealer.close()
        self.out.commit()

    def seal(self) -> None:
        """Seals the last chunk; the deposit store's `record_routing` then puts the share in
        place (its `out`, in the routing's transaction)."""
        self.sealer.close()

    def discard(self) -> None:
        """Drops what was written."""
        self.out.discard()


class DepositFiles:
    """Deposits' sealed files (with the node's key) and shares (sealed to their organisms'
    encryption keys, as `encryption_key` finds them in the directory), by name in `blobs`: the
    node's disk, or the database every node shares (registry/kernel/blob_store.py)."""

    def __init__(
        self, blobs: BlobStore, key: bytes, encryption_key: Callable[[str], KeyEntry | None]
    ) -> None:
        self.blobs = blobs
        self.key = key
        self.encryption_key = encryption_key

    @staticmethod
    def deposit(deposit_id: str) -> str:
        """The name of a deposit's sealed file."""
        return f"deposits/{deposit_id}.dsn.sealed"

    @staticmethod
    def share(delivery: str) -> str:
        """The name of an organism's sealed share."""
        return f"shares/{delivery}.dsn.sealed"

    def writer(self, name: str) -> SealedWriter:
        """A writer of the file `name`, sealed with the node's key."""
        return SealedWriter(self.blobs.writer(name), self.key)

    def share_writer(
        self,
        delivery_id: str,
        organism: str,
        encryption_key: Callable[[str], KeyEntry | None] | None = None,
    ) -> ShareFile:
        """A writer of the share `delivery_id`, sealed to the organism's current encryption key
        (as `encryption_key` finds it, the directory by default); raises NoEncryptionKey when
        it has none."""
        key = (encryption_key or self.encryption_key)(organism)
        if key is None:
            raise NoEncryptionKey(organism)
        return ShareFile(self.blobs.writer(self.share(delivery_id)), delivery_id, key)

    def read(self, name: str) -> Iterator[bytes]:
        """The plaintext of a file sealed with the node's key, chunk by chunk."""
        return open_sealed(self.blobs.read(name), PurePosixPath(name).name, self.key)

    def stored(self, name: str) -> Iterator[bytes]:
        """A file's bytes as stored (a share sealed to its organism: the node cannot open it)."""
        return self.blobs.read(name)

    def stored_small(self, names: Collection[str]) -> dict[str, bytes]:
        """`stored` of the files of `names` that hold one chunk at most, by name, at once (the
        others are not in it: read them with `stored`)."""
        return self.blobs.read_small(names)

    def exists(self, name: str) -> bool:
        """True when the file is there."""
        return self.blobs.exists(name)

    def delete(self, name: str) -> None:
        """Removes the file; nothing when it is gone already."""
        self.blobs.delete(name)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One organism's part of a deposit."""

    id: str
    deposit_id: str
    organism: str
    state: DeliveryState
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
    # The organism's encryption key its share is sealed to ("": sealed with the node's key).
    sealed_for_key_id: str

    def to_proto(self, trace_parent: str = "") -> pb.Delivery:
        """The delivery as its organism and the declarant see it (`trace_parent`: the span
        that hands it over, which the organism continues)."""
        sent = self.state == DeliveryState.SENT
        return pb.Delivery(
            id=self.id, deposit_id=self.deposit_id, organism=self.organism,
            state=self.state.to_proto(), nature=self.nature, size=self.size, sha256=self.sha256,
            attempts=self.attempts, lease_expires=timestamp(self.lease_until if sent else 0),
            acknowledged_at=timestamp(self.acknowledged_at),
            receipt_key_id=self.receipt_key_id or "", trace_parent=trace_parent,
            sealed_for_key_id=self.sealed_for_key_id,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DepositRecord:
    """A deposit as stored, with its deliveries when read with them."""

    id: str
    declarant: str
    request_id: str | None
    file_name: str
    size: int
    sha256: bytes
    state: DepositState
    receipt: Receipt
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
        if self.state == DepositState.REJECTED:
            return True
        return self.state == DepositState.ROUTED and all(
            d.state == DeliveryState.ACKNOWLEDGED for d in self.deliveries
        )

    def to_proto(self, trace_id: str = "") -> pb.Deposit:
        """The deposit with its deliveries (`trace_id`: of the call that deposited it)."""
        return pb.Deposit(
            id=self.id, declarant=self.declarant, request_id=self.request_id or "",
            file_name=self.file_name, size=self.size, sha256=self.sha256,
            state=self.state.to_proto(), receipt=self.receipt.to_proto(),
            rejection_code=self.rejection_code, rejection_message=self.rejection_message,
            nature=self.nature, type=self.type, month=self.month, sirets=self.sirets,
            individuals=self.individuals,
            validation=pb.ValidationSummary(
                blocking=self.blocking, warnings=self.warnings, norm_version=self.norm_version
            ),
            deliveries=[d.to_proto() for d in self.deliveries],
            received_at=timestamp(self.received_at), updated_at=timestamp(self.updated_at),
            version=self.version, trace_id=trace_id,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReturnRecord:
    """A return; `body` holds what its row seals: the content and the PAS rates."""

    position: int
    id: str
    deposit_id: str
    declarant: str
    organism: str
    kind: ReturnKind
    code: str
    status: int
    body: pb.Return
    created_at: int

    def to_proto(self) -> pb.Return:
        """The return as the declarant and its organism see it."""
        message = pb.Return()
        message.CopyFrom(self.body)
        message.MergeFrom(
            pb.Return(
                id=self.id, deposit_id=self.deposit_id, organism=self.organism,
                kind=self.kind.to_proto(), code=self.code,
                status=self.status,  # type: ignore[arg-type]
                created_at=timestamp(self.created_at), position=self.position,
            )
        )  # fmt: skip
        return message


@dataclass(frozen=True, slots=True)
class NewDeposit:
    """What SubmitDeposit knows before storing."""

    declarant: str
    request_id: str | None
    file_name: str
    size: int
    sha256: bytes
    receipt: Receipt = Receipt.AEE
    rejection_code: str = ""
    rejection_message: str = ""
    norm_version: str = ""
    nature: str = ""
    type: str = ""
    month: str = ""
    sirets: tuple[str, ...] = ()
    trace_parent: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class Claimed(NamedTuple):
    """What a claim took, and which of the deposits it was to prefer no node may claim now."""

    ids: list[str]
    unclaimable: list[str]


@dataclass(frozen=True, slots=True)
class Validated:
    """The outcome of validation, as the pipeline stores it."""

    conformant: bool
    norm_version: str
    nature: str
    type: str
    month: str
    individuals: int
    blocking: int
    warnings: int
    rejection_code: str = ""
    rejection_message: str = ""


@dataclass(frozen=True, slots=True)
class RoutedShare:
    """One organism's share as written by the router: the plaintext's size and SHA-256, and
    the encryption key it is sealed to (ShareFile.key_id)."""

    organism: str
    size: int
    sha256: bytes
    key_id: str = ""


def _delivery(row: Sequence[object]) -> DeliveryRecord:
    record = DeliveryRecord(*row)  # type: ignore[arg-type]
    return replace(record, state=DeliveryState(record.state))


def _deposit(row: Sequence[object], found: tuple[DeliveryRecord, ...] = ()) -> DepositRecord:
    values = list(row)
    values[6], values[7] = DepositState(str(values[6])), Receipt(str(values[7]))
    values[14] = tuple(json.loads(str(values[14])))
    return DepositRecord(*values, found)  # type: ignore[arg-type, call-arg]


_DEPOSIT_COLUMNS = [deposits.c[f.name] for f in fields(DepositRecord) if f.name != "deliveries"]
_DELIVERY_COLUMNS = [deliveries.c[f.name] for f in fields(DeliveryRecord)]
_RETURN_COLUMNS = [deposit_returns.c[f.name] for f in fields(ReturnRecord) if f.name != "body"]


# However often a deposit failed, some node tries it again within the hour.
_LONGEST_WAIT_MS = 3_600_000


class DepositStore:
    """Deposits, deliveries and returns in the database."""

    def __init__(self, engine: Engine, data_key: bytes) -> None:
        self.engine = engine
        self.aead = AESGCM(data_key)

    # -- deposits --------------------------------------------------------------------------

    def find(self, declarant: str, request_id: str | None, sha256: bytes) -> DepositRecord | None:
        """The declarant's deposit with that request id, else the one taken (AEE) with that
        content."""
        with reading(self.engine) as connection:
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
                    deposits.c.receipt == Receipt.AEE,
                )
                .order_by(deposits.c.received_at)
                .limit(1)
            ).first()
            return self._with_deliveries(connection, row) if row is not None else None

    def receive(self, new: NewDeposit, file: SealedWriter) -> tuple[DepositRecord, bool]:
        """Stores a deposit whose file `file` wrote, with its size and SHA-256: an ARE keeps no
        file (nothing will read it), an AEE's is put in place for the pipeline. (The stored one,
        False) when a concurrent retry stored it first, whose file is the one kept."""
        if new.receipt == Receipt.ARE:
            file.discard()
        else:
            file.close()
        record, created = self.create(replace(new, size=file.size, sha256=file.sha256))
        if not created:
            file.remove()
        return record, created

    def create(self, new: NewDeposit) -> tuple[DepositRecord, bool]:
        """Stores a deposit; (the stored one, False) when a concurrent retry stored it first."""
        moment = now_ms()
        state = DepositState.REJECTED if new.receipt == Receipt.ARE else DepositState.RECEIVED
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
                row = connection.execute(
                    insert(deposits).values(**values).returning(*_DEPOSIT_COLUMNS)
                ).one()
        except IntegrityError:
            existing = self.find(new.declarant, new.request_id, new.sha256)
            if existing is None:
                raise
            return existing, False
        return _deposit(row, ()), True  # as stored, with no delivery yet

    def get(self, deposit_id: str, declarant: str | None = None) -> DepositRecord | None:
        """A deposit with its deliveries (None if absent, or not the declarant's)."""
        query = select(*_DEPOSIT_COLUMNS).where(deposits.c.id == deposit_id)
        if declarant is not None:
            query = query.where(deposits.c.declarant == declarant)
        with reading(self.engine) as connection:
            row = connection.execute(query).first()
            return self._with_deliveries(connection, row) if row is not None else None

    def version(self, deposit_id: str) -> int:
        """The deposit's current version (0 if absent)."""
        with reading(self.engine) as connection:
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
        with reading(self.engine) as connection:
            rows = connection.execute(query).all()
            return [self._with_deliveries(connection, row) for row in rows]

    def claim(self, node: str, limit: int, lease_ms: int, prefer: Sequence[str] = ()) -> Claimed:
        """Up to `limit` deposits whose validation or routing is still to do and that no node
        holds, oldest first (events first), now held by `node` for `lease_ms` (then free again:
        a node killed while working on one leaves it to another). On PostgreSQL rows another
        node is claiming are skipped (FOR UPDATE SKIP LOCKED): no two nodes take one.
        Those of `prefer` waiting (the deposits whose reading the node holds) come after the
        events, for half the batch at most (the oldest are never left waiting for ever); those
        of `prefer` no node may claim now (finished, or another node's) are said too."""
        moment = now_ms()
        waiting = select(deposits.c.id, deposits.c.priority).where(
            deposits.c.state.in_((DepositState.RECEIVED, DepositState.VALIDATED)),
            deposits.c.claimed_until <= moment,
        )
        order = (deposits.c.priority, deposits.c.received_at)
        with self.engine.begin() as connection:
            found = connection.execute(
                waiting.order_by(*order).limit(limit).with_for_update(skip_locked=True)
            ).all()
            preferred = connection.execute(
                waiting.where(deposits.c.id.in_(sorted(set(prefer))))
                .order_by(*order)
                .with_for_update(skip_locked=True)
            ).all() if prefer else []  # fmt: skip
            events = [row.id for row in (*found, *preferred) if row.priority == 0]
            rows = list(dict.fromkeys([
                *events, *(row.id for row in preferred[: max(1, limit // 2)]),
                *(row.id for row in found),
            ]))[:limit]  # fmt: skip
            if rows:
                connection.execute(
                    update(deposits).where(deposits.c.id.in_(rows))
                    .values(claimed_by=node, claimed_until=moment + lease_ms,
                            claims=deposits.c.claims + 1)
                )  # fmt: skip
        claimable = {str(row.id) for row in (*found, *preferred)}
        return Claimed(
            [str(deposit_id) for deposit_id in rows],
            sorted(set(prefer) - claimable),
        )

    def renew(self, deposit_ids: Sequence[str], node: str, lease_ms: int) -> int:
        """Extends `node`'s claims of these unfinished deposits by `lease_ms` from now (a node
        alive keeps its work; a dead one's claims run out); returns how many it still held."""
        if not deposit_ids:
            return 0
        with self.engine.begin() as connection:
            done = connection.execute(
                update(deposits)
                .where(deposits.c.id.in_(list(deposit_ids)), deposits.c.claimed_by == node,
                       deposits.c.state.in_((DepositState.RECEIVED, DepositState.VALIDATED)))
                .values(claimed_until=now_ms() + lease_ms)
            )  # fmt: skip
        return int(done.rowcount)

    def retry_later(self, deposit_id: str, node: str, first_wait_ms: int) -> int:
        """Leaves a deposit `node` could not finish (a failure, an organism without a key yet)
        for `first_wait_ms` doubled with each earlier claim (at most an hour), to any node;
        returns the wait."""
        with self.engine.begin() as connection:
            claims = connection.execute(
                select(deposits.c.claims)
                .where(deposits.c.id == deposit_id, deposits.c.claimed_by == node)
            ).scalar()  # fmt: skip
            if claims is None:
                return 0
            wait = min(first_wait_ms << min(max(int(claims) - 1, 0), 20), _LONGEST_WAIT_MS)
            connection.execute(
                update(deposits).where(deposits.c.id == deposit_id)
                .values(claimed_until=now_ms() + wait)
            )  # fmt: skip
        return wait

    def purgeable(self, finished_before: int, limit: int) -> list[tuple[str, list[str]]]:
        """Deposits whose files may go (`(id, its delivery ids)`): not purged yet, last changed
        before `finished_before` (Unix ms), and owing nothing: rejected, or routed with every
        delivery acknowledged. Oldest first."""
        owed = (
            select(deliveries.c.id)
            .where(deliveries.c.deposit_id == deposits.c.id,
                   deliveries.c.state != DeliveryState.ACKNOWLEDGED)
            .exists()
        )  # fmt: skip
        with reading(self.engine) as connection:
            ids = connection.execute(
                select(deposits.c.id)
                .where(deposits.c.purged_at == 0, deposits.c.updated_at < finished_before,
                       deposits.c.state.in_((DepositState.REJECTED, DepositState.ROUTED)),
                       ~owed)
                .order_by(deposits.c.updated_at)
                .limit(limit)
            ).scalars().all()  # fmt: skip
            shares = connection.execute(
                select(deliveries.c.deposit_id, deliveries.c.id)
                .where(deliveries.c.deposit_id.in_(ids))
            ).all()  # fmt: skip
        found: dict[str, list[str]] = {str(deposit_id): [] for deposit_id in ids}
        for deposit_id, delivery in shares:
            found[str(deposit_id)].append(str(delivery))
        return list(found.items())

    def mark_purged(self, deposit_id: str) -> None:
        """Records that a deposit's files are gone."""
        with self.engine.begin() as connection:
            connection.execute(
                update(deposits).where(deposits.c.id == deposit_id).values(purged_at=now_ms())
            )

    def purged(self, deposit_id: str) -> bool:
        """True when the deposit's files were purged."""
        with reading(self.engine) as connection:
            return bool(connection.execute(
                select(deposits.c.purged_at).where(deposits.c.id == deposit_id)
            ).scalar())  # fmt: skip

    def _with_deliveries(self, connection: Connection, row: Sequence[object]) -> DepositRecord:
        found = connection.execute(
            select(*_DELIVERY_COLUMNS)
            .where(deliveries.c.deposit_id == row[0])
            .order_by(deliveries.c.organism)
        ).all()
        return _deposit(row, tuple(_delivery(r) for r in found))

    @staticmethod
    def _move(
        connection: Connection,
        deposit_id: str,
        from_state: DepositState,
        returning: Sequence[ColumnElement[Any]],
        **values: object,
    ) -> Row[Any] | None:
        """Moves a deposit that is in `from_state` on (`values`, a new version for its
        followers), in one statement that locks its row first (then its transaction's other
        writes); its `returning` columns, None (nothing changed) when the deposit is not, or no
        longer, in `from_state`."""
        return connection.execute(
            update(deposits)
            .where(deposits.c.id == deposit_id, deposits.c.state == from_state)
            .values(updated_at=now_ms(), version=deposits.c.version + 1, **values)
            .returning(*returning)
        ).first()

    @staticmethod
    def _bump_all(connection: Connection, deposit_ids: Collection[str]) -> None:
        """A new version of each deposit (for its followers), in one statement that locks them
        in id order first (on PostgreSQL; SQLite has one writer): every batch of leases or
        acknowledgements takes the deposits it bumps in the same order, so that two never wait
        for each other."""
        if not deposit_ids:
            return
        ordered = sorted(deposit_ids)
        if connection.dialect.name == "postgresql":
            locked = (
                select(deposits.c.id).where(deposits.c.id.in_(ordered))
                .order_by(deposits.c.id).with_for_update()
            )  # fmt: skip
            chosen = deposits.c.id.in_(locked.scalar_subquery())
        else:
            chosen = deposits.c.id.in_(ordered)
        connection.execute(
            update(deposits).where(chosen)
            .values(updated_at=now_ms(), version=deposits.c.version + 1)
        )  # fmt: skip

    def record_validation(
        self,
        deposit_id: str,
        outcome: Validated,
        report: bytes,
        also: Callable[[Connection], object] | None = None,
    ) -> None:
        """Stores the validation's outcome and its CCO or BAN (`report`, a JSON document) as the
        first return, at once, with what `also(connection)` writes in the same transaction (the
        relations the file reveals: recorded once, with its CCO). The deposit's SIRETs stay
        those its rights were checked on."""
        with self.engine.begin() as connection:
            row = self._move(
                connection, deposit_id, DepositState.RECEIVED, (deposits.c.declarant,),
                state=DepositState.VALIDATED if outcome.conformant else DepositState.REJECTED,
                norm_version=outcome.norm_version, nature=outcome.nature, type=outcome.type,
                month=outcome.month, individuals=outcome.individuals, blocking=outcome.blocking,
                warnings=outcome.warnings, rejection_code=outcome.rejection_code,
                rejection_message=outcome.rejection_message[:500],
                priority=0 if outcome.nature in ("04", "05", "07") else 1,
            )  # fmt: skip
            if row is None:
                return  # done already (a retry after a crash between commit and the caller)
            self._insert_return(
                connection, deposit_id, str(row.declarant), "",
                kind=ReturnKind.CCO if outcome.conformant else ReturnKind.BAN, code="",
                status=_CCO_STATUS if outcome.conformant else _BAN_STATUS, request_id=None,
                body=pb.Return(content=report, content_type="application/json"),
            )  # fmt: skip
            if also is not None:  # last: the rows it locks are held until the commit only
                also(connection)

    def record_routing(
        self,
        deposit_id: str,
        shares: Sequence[RoutedShare],
        files: Sequence[ShareFile] = (),
    ) -> None:
        """Writes the outbox (one delivery per organism concerned) and ROUTED, at once, with
        the shares' sealed `files` when they are kept in this database (on disk: put in place
        first)."""
        moment = now_ms()
        with self.engine.begin() as connection:
            row = self._move(
                connection, deposit_id, DepositState.VALIDATED,
                (deposits.c.priority, deposits.c.nature, deposits.c.trace_parent),
                state=DepositState.ROUTED,
            )  # fmt: skip
            if row is None:
                return
            commit_all_in(connection, [file.out for file in files])
            if shares:  # one statement for every share, in one round trip
                connection.execute(insert(deliveries), [
                    {
                        "id": delivery_id(deposit_id, share.organism),
                        "deposit_id": deposit_id,
                        "organism": share.organism,
                        "state": DeliveryState.PENDING,
                        "priority": row.priority,
                        "nature": row.nature,
                        "size": share.size,
                        "sha256": share.sha256,
                        "attempts": 0,
                        "lease_id": None,
                        "lease_until": 0,
                        "created_at": moment,
                        "acknowledged_at": 0,
                        "receipt_key_id": None,
                        "receipt_signature": None,
                        "trace_parent": row.trace_parent,
                        "sealed_for_key_id": share.key_id,
                    }
                    for share in shares
                ])  # fmt: skip

    # -- deliveries ------------------------------------------------------------------------

    def lease(self, organism: str, limit: int, lease_ms: int) -> list[DeliveryRecord]:
        """Leases up to `limit` of the organism's deliveries that are pending or whose lease
        ran out, events first, oldest first."""
        moment = now_ms()
        # Free to lease: pending, or handed over and its lease ran out.
        free = or_(
            deliveries.c.state == DeliveryState.PENDING,
            and_(deliveries.c.state == DeliveryState.SENT, deliveries.c.lease_until < moment),
        )
        with self.engine.begin() as connection:
            ids = connection.execute(
                select(deliveries.c.id, deliveries.c.deposit_id)
                .where(deliveries.c.organism == organism, free)
                .order_by(deliveries.c.priority, deliveries.c.created_at, deliveries.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not ids:
                return []
            # One statement for all, which hands them over and answers them. The conditions
            # again: on SQLite the select takes no lock, so an acknowledgement may come in
            # between; only the rows this lease took (its lease id) are handed over.
            rows = connection.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([delivery for delivery, _ in ids]), free)
                .values(
                    state=DeliveryState.SENT,
                    lease_id=uuid.uuid4().hex,
                    lease_until=moment + lease_ms,
                    attempts=deliveries.c.attempts + 1,
                )
                .returning(*_DELIVERY_COLUMNS)
            ).all()  # fmt: skip
            self._bump_all(connection, {str(row.deposit_id) for row in rows})
        # Events first, oldest first (RETURNING keeps no order).
        return [
            _delivery(row)
            for row in sorted(rows, key=lambda row: (row.priority, row.created_at, row.id))
        ]

    def delivery(self, delivery: str) -> DeliveryRecord | None:
        """One delivery."""
        return self.deliveries_by_id([delivery]).get(delivery)

    def deliveries_by_id(self, ids: Collection[str]) -> dict[str, DeliveryRecord]:
        """The deliveries of these ids that exist, by id (one statement)."""
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(*_DELIVERY_COLUMNS).where(deliveries.c.id.in_(list(ids)))
            ).all()
        return {record.id: record for record in map(_delivery, rows)}

    def acknowledge(self, delivery: str, key_id: str, signature: bytes) -> DeliveryRecord:
        """Marks a delivery acknowledged with its receipt (a second acknowledgement keeps the
        first receipt)."""
        return self.acknowledge_all([(delivery, key_id, signature)])[0]

    def acknowledge_all(self, receipts: Sequence[tuple[str, str, bytes]]) -> list[DeliveryRecord]:
        """`acknowledge` of each (delivery, key id, signature), in one transaction: the
        deliveries as they are after it, in the receipts' order (the deliveries exist)."""
        ids = sorted({delivery for delivery, _, _ in receipts})  # locked in id order
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(deliveries.c.id, deliveries.c.state, deliveries.c.deposit_id)
                .where(deliveries.c.id.in_(ids))
                .order_by(deliveries.c.id)
                .with_for_update()
            ).all()
            pending = {str(row[0]): str(row[2]) for row in rows
                       if row[1] != DeliveryState.ACKNOWLEDGED}  # fmt: skip
            first: dict[str, tuple[str, bytes]] = {}  # named twice: the first receipt
            for delivery, key_id, signature in receipts:
                if delivery in pending:
                    first.setdefault(delivery, (key_id, signature))
            if first:
                connection.execute(
                    update(deliveries)
                    # Not acknowledged meanwhile (on SQLite the select took no lock): the first
                    # receipt stays.
                    .where(deliveries.c.id == bindparam("acknowledged"),
                           deliveries.c.state != DeliveryState.ACKNOWLEDGED)
                    .values(
                        state=DeliveryState.ACKNOWLEDGED,
                        acknowledged_at=now_ms(),
                        lease_until=0,
                        receipt_key_id=bindparam("key"),
                        receipt_signature=bindparam("signature"),
                    ),
                    [{"acknowledged": delivery, "key": key_id, "signature": signature}
                     for delivery, (key_id, signature) in first.items()],
                )  # fmt: skip
                self._bump_all(connection, {pending[delivery] for delivery in first})
            found = {
                record.id: record
                for record in map(_delivery, connection.execute(
                    select(*_DELIVERY_COLUMNS).where(deliveries.c.id.in_(ids))
                ).all())
            }  # fmt: skip
        return [found[delivery] for delivery, _, _ in receipts]

    # -- returns ---------------------------------------------------------------------------

    def _seal(self, return_id: str, body: pb.Return) -> bytes:
        return seal(self.aead, body.SerializeToString(), return_id.encode())

    def _open(self, return_id: str, sealed: bytes) -> pb.Return:
        return pb.Return.FromString(unseal(self.aead, sealed, return_id.encode()))

    def _insert_return(
        self, connection: Connection, deposit_id: str, declarant: str, organism: str, *,
        kind: ReturnKind, code: str, status: int, request_id: str | None, body: pb.Return,
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
                sealed=self._seal(return_id, body),
                created_at=now_ms(),
            )
        )
        return return_id

    def add_return(
        self, deposit_id: str, organism: str, *, code: str, status: int, request_id: str | None,
        content: bytes, content_type: str, pas_rates: Sequence[pb.PasRate],
    ) -> tuple[ReturnRecord, bool]:  # fmt: skip
        """Stores an organism's CRM; (the stored one, False) when the request id was used."""
        body = pb.Return(content=content, content_type=content_type, pas_rates=pas_rates)
        if request_id:
            existing = self._return_by_request(organism, request_id)
            if existing is not None:
                return existing, False
        declarant = self.get(deposit_id)
        assert declarant is not None
        try:
            with self.engine.begin() as connection:
                return_id = self._insert_return(
                    connection, deposit_id, declarant.declarant, organism, kind=ReturnKind.CRM,
                    code=code, status=status, request_id=request_id or None, body=body,
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
        with reading(self.engine) as connection:
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
            body = self._open(str(return_id), bytes(sealed))
            found.append(ReturnRecord(
                int(position), str(return_id), str(deposit_id), str(declarant), str(organism),
                ReturnKind(kind), str(code), int(status), body, int(created),
            ))  # fmt: skip
        return found


def delivery_id(deposit_id: str, organism: str) -> str:
    """The stable id of an organism's delivery of a deposit."""
    return f"{deposit_id}.{organism}"
