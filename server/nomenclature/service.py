"""interops.nomenclature.v1.NomenclatureService: versioned reference tables; publishing a
version notifies the companies subscribed to nomenclature updates."""

from __future__ import annotations

import asyncio

from google.protobuf.timestamp_pb2 import Timestamp
from interops.nomenclature.v1 import nomenclature_pb2 as pb
from interops.nomenclature.v1 import nomenclature_pb2_grpc

from registry.nomenclature.store import (
    NOMENCLATURE_TOPIC,
    DuplicateCode,
    NomenclatureStore,
    difference,
    notice_key,
)
from server.notify.topic_notices import NoticeTemplate, TopicNotices
from server.rpc.errors import FieldViolation, InvalidArgument, NotFound
from server.rpc.handler_wrapping import Context

NOTICE = NoticeTemplate(
    "nomenclature-update",
    NOMENCLATURE_TOPIC,
    "Nouvelle version de la nomenclature {table}",
    "La nomenclature {table} passe en version {version}.\n\n{note}",
)


class NomenclatureService(nomenclature_pb2_grpc.NomenclatureServiceServicer):
    """Serves the tables; publication goes through the notification outbox."""

    def __init__(self, store: NomenclatureStore, notices: TopicNotices) -> None:
        self.store = store
        self.notices = notices

    async def PublishVersion(
        self, request: pb.PublishVersionRequest, context: Context
    ) -> pb.PublishVersionResponse:
        pairs = [(code.code, code.label) for code in request.codes]
        try:
            version, note = await asyncio.to_thread(self.store.publish, request.table, pairs)
        except DuplicateCode as duplicate:
            raise InvalidArgument(
                "DUPLICATE_CODE",
                str(duplicate),
                violations=[FieldViolation("codes", "a code appears twice")],
            ) from None
        values = {"table": request.table, "version": str(version), "note": note[:15000]}
        notified = await self.notices.send(NOTICE, notice_key(request.table, version), values)
        return pb.PublishVersionResponse(version=version, note=note, notified=notified)

    async def _codes(self, table: str, version: int) -> tuple[int, dict[str, str]]:
        version = version or await asyncio.to_thread(self.store.latest, table)
        codes = await asyncio.to_thread(self.store.codes, table, version) if version else None
        if codes is None:
            raise NotFound("VERSION_NOT_FOUND", f"no version {version} of table {table!r}")
        return version, codes

    async def GetTable(self, request: pb.GetTableRequest, context: Context) -> pb.GetTableResponse:
        version, codes = await self._codes(request.table, request.version)
        published = Timestamp()
        published.FromMilliseconds(
            await asyncio.to_thread(self.store.published_at, request.table, version)
        )
        return pb.GetTableResponse(
            table=pb.TableVersion(
                table=request.table,
                version=version,
                published_at=published,
                codes=[pb.Code(code=c, label=label) for c, label in sorted(codes.items())],
            )
        )

    async def Diff(self, request: pb.DiffRequest, context: Context) -> pb.DiffResponse:
        old = (
            (await self._codes(request.table, request.from_version))[1]
            if request.from_version
            else {}
        )
        _, new = await self._codes(request.table, request.to_version)
        found = difference(old, new)
        return pb.DiffResponse(
            added=[pb.Code(code=c, label=label) for c, label in sorted(found.added.items())],
            removed=[pb.Code(code=c, label=label) for c, label in sorted(found.removed.items())],
            changed=[
                pb.ChangedCode(code=c, old_label=a, new_label=b)
                for c, (a, b) in sorted(found.changed.items())
            ],
            note=found.note(request.table, request.from_version, request.to_version),
        )
