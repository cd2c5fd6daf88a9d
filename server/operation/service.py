"""interops.operation.v1.OperationService: reading and following long-running operations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from google.protobuf import timestamp_pb2
from interops.operation.v1 import operation_pb2 as pb
from interops.operation.v1 import operation_pb2_grpc

from registry.kernel.change_feed import OPERATION, ChangeFeed
from registry.operation.store import OperationRecord, OperationStore
from server.rpc.errors import NotFound
from server.rpc.handler_wrapping import Context


def operation_message(record: OperationRecord) -> pb.Operation:
    """The Operation message of a stored operation."""
    created, updated = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    created.FromDatetime(record.created_at)
    updated.FromDatetime(record.updated_at)
    return pb.Operation(
        name=f"operations/{record.id}",
        kind=record.kind,
        state=pb.OperationState.ValueType(record.state),
        done=record.done,
        done_units=record.done_units,
        total_units=record.total_units,
        unit=record.unit,
        create_time=created,
        update_time=updated,
        result=record.result,
        error=record.error,
    )


class OperationService(operation_pb2_grpc.OperationServiceServicer):
    """Serves operations from the shared store, so any replica answers for any operation."""

    def __init__(self, store: OperationStore, poll_seconds: float, *, changes: ChangeFeed) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.changes = changes

    async def _get(self, name: str) -> OperationRecord:
        record = await asyncio.to_thread(self.store.get, name.removeprefix("operations/"))
        if record is None:
            raise NotFound("OPERATION_NOT_FOUND", f"no operation {name}")
        return record

    async def GetOperation(
        self, request: pb.GetOperationRequest, context: Context
    ) -> pb.GetOperationResponse:
        return pb.GetOperationResponse(operation=operation_message(await self._get(request.name)))

    async def WatchOperation(
        self, request: pb.WatchOperationRequest, context: Context
    ) -> AsyncIterator[pb.WatchOperationResponse]:
        last = None
        with self.changes.watch(OPERATION, request.name.removeprefix("operations/")) as changed:
            while True:
                record = await self._get(request.name)
                seen = (record.state, record.done_units, record.updated_at)
                if seen != last:
                    last = seen
                    yield pb.WatchOperationResponse(operation=operation_message(record))
                if record.done:
                    return
                await changed.wait(self.poll_seconds)
