"""Storage of long-running operations: their state, progress, result and error.

A result is any message (kept packed in a google.protobuf.Any), an error a google.rpc.Status;
the store serializes them, so its callers hand over messages and get messages back.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2
from interops.operation.v1 import operation_pb2
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from registry.kernel.database import reading
from registry.operation.schema import operations


class OperationState(enum.IntEnum):
    """Where an operation stands, stored and sent as the number of interops.operation.v1."""

    PENDING = operation_pb2.OPERATION_STATE_PENDING
    RUNNING = operation_pb2.OPERATION_STATE_RUNNING
    SUCCEEDED = operation_pb2.OPERATION_STATE_SUCCEEDED
    FAILED = operation_pb2.OPERATION_STATE_FAILED


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One operation as stored."""

    id: str
    kind: str
    state: OperationState
    done_units: int
    total_units: int
    unit: str
    result: any_pb2.Any | None
    error: status_pb2.Status | None
    created_at: datetime
    updated_at: datetime

    @property
    def done(self) -> bool:
        """True once the operation succeeded or failed."""
        return self.state in (OperationState.SUCCEEDED, OperationState.FAILED)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _record(row: tuple[object, ...]) -> OperationRecord:
    (id_, kind, state, done, total, unit, result, error, created, updated) = row
    assert isinstance(created, datetime) and isinstance(updated, datetime)
    return OperationRecord(
        str(id_), str(kind), OperationState(int(str(state))),
        int(str(done)), int(str(total)), str(unit),
        any_pb2.Any.FromString(result) if isinstance(result, bytes) and result else None,
        status_pb2.Status.FromString(error) if isinstance(error, bytes) and error else None,
        _utc(created), _utc(updated),
    )  # fmt: skip


_COLUMNS = [
    operations.c[name]
    for name in (
        "id", "kind", "state", "done_units", "total_units", "unit", "result", "error",
        "created_at", "updated_at",
    )
]  # fmt: skip


class OperationStore:
    """Operations in the database, shared by every replica of the server."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, kind: str, unit: str, total_units: int, request_id: str = ""
    ) -> tuple[OperationRecord, bool]:
        """Creates a PENDING operation; returns it and True, or the one of the same request id
        and False."""
        request_key = f"{kind}:{request_id}" if request_id else None
        now = datetime.now(UTC)
        values = {
            "id": uuid.uuid4().hex, "kind": kind, "state": OperationState.PENDING,
            "done_units": 0, "total_units": total_units, "unit": unit,
            "request_key": request_key, "created_at": now, "updated_at": now,
        }  # fmt: skip
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(operations).values(values))
        except IntegrityError:
            if request_key is None:
                raise
            with reading(self.engine) as connection:
                row = connection.execute(
                    select(*_COLUMNS).where(operations.c.request_key == request_key)
                ).one()
            return _record(tuple(row)), False
        found = self.get(str(values["id"]))
        assert found is not None
        return found, True

    def get(self, operation_id: str) -> OperationRecord | None:
        """The operation with this id, or None."""
        with reading(self.engine) as connection:
            row = connection.execute(
                select(*_COLUMNS).where(operations.c.id == operation_id)
            ).first()
        return _record(tuple(row)) if row is not None else None

    def progress(self, operation_id: str, done_units: int) -> None:
        """Records progress of a running operation."""
        self._set(operation_id, state=OperationState.RUNNING, done_units=done_units)

    def succeed(self, operation_id: str, result: Message, done_units: int) -> None:
        """Marks the operation SUCCEEDED with its result (any message)."""
        packed = any_pb2.Any()
        packed.Pack(result)
        self._set(
            operation_id, state=OperationState.SUCCEEDED, result=packed.SerializeToString(),
            done_units=done_units,
        )  # fmt: skip

    def fail(self, operation_id: str, error: status_pb2.Status) -> None:
        """Marks the operation FAILED with its error."""
        self._set(operation_id, state=OperationState.FAILED, error=error.SerializeToString())

    def touch(self, operation_ids: list[str]) -> None:
        """Marks unfinished operations as looked after still (queued behind others on a live
        node), so that `unfinished` does not take them for a dead node's."""
        if not operation_ids:
            return
        with self.engine.begin() as connection:
            connection.execute(
                update(operations)
                .where(
                    operations.c.id.in_(operation_ids),
                    operations.c.state.in_([OperationState.PENDING, OperationState.RUNNING]),
                )
                .values(updated_at=datetime.now(UTC))
            )

    def unfinished(self, kind: str, idle_seconds: float = 0.0) -> list[OperationRecord]:
        """Operations of a kind still PENDING or RUNNING and not updated for `idle_seconds`:
        those whose process died (a live one records its progress more often than that)."""
        idle_since = datetime.now(UTC) - timedelta(seconds=idle_seconds)
        with reading(self.engine) as connection:
            rows = connection.execute(
                select(*_COLUMNS).where(
                    operations.c.kind == kind,
                    operations.c.state.in_([OperationState.PENDING, OperationState.RUNNING]),
                    operations.c.updated_at <= idle_since,
                )
            ).all()
        return [_record(tuple(row)) for row in rows]

    def fail_if_idle(
        self, operation_id: str, error: status_pb2.Status, idle_seconds: float
    ) -> bool:
        """Fails the operation if it is still unfinished and was not updated for
        `idle_seconds` (checked in the same statement: a node that recorded progress meanwhile
        keeps it); True when it did."""
        idle_since = datetime.now(UTC) - timedelta(seconds=idle_seconds)
        return self._set(
            operation_id, operations.c.updated_at <= idle_since,
            state=OperationState.FAILED, error=error.SerializeToString(),
        )  # fmt: skip

    def _set(self, operation_id: str, *conditions: Any, **values: object) -> bool:
        """Updates an unfinished operation (a finished one never changes: a late success does
        not overwrite a failure); True when it did."""
        with self.engine.begin() as connection:
            done = connection.execute(
                update(operations)
                .where(
                    operations.c.id == operation_id,
                    operations.c.state.in_([OperationState.PENDING, OperationState.RUNNING]),
                    *conditions,
                )
                .values(updated_at=datetime.now(UTC), **values)
            )
        return bool(done.rowcount)
