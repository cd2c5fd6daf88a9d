"""interops.dsn.v1.DeliveryService: organisms fetch their shares of deposits, acknowledge them
with signed receipts and post their CRMs.

A share is sealed to its organism's encryption key (token_suite/sealed_share.py): the node
streams its bytes as stored, unable to read them, and the organism opens them; the receipt signs
the SHA-256 of the plaintext, recorded at routing. A share routed before shares were sealed to
organisms (no `sealed_for_key_id`) is sealed with the node's key: the node opens it.

The organism is the token chain's subject ("organism:CODE"); it sees only its own deliveries and
posts returns only for deposits delivered to it, with the CRM codes of its kind.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator

from interops.dsn.v1 import dsn_pb2 as pb
from interops.dsn.v1 import dsn_pb2_grpc
from opentelemetry.trace import Tracer

from clients.tracing import context_of, traceparent
from registry.dsn.deposit_store import DeliveryRecord, DepositFiles, DepositStore, delivery_id
from registry.dsn.returns import ReceiptFault, crm_codes, receipt_fault
from registry.kernel.change_feed import DELIVERY, ChangeFeed
from server.audit.journal import note
from server.notify.topic_notices import NoticeTemplate, TopicNotices
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from server.rpc.handler_wrapping import Context
from server.token.trust import NodeTrust

DEFAULT_LEASE_SECONDS = 300
MIN_LEASE_SECONDS = 10
DEFAULT_BATCH = 10

# The notice the declared companies receive when an organism posts a CRM about their deposit.
CRM_NOTICE = NoticeTemplate(
    "crm-posted",
    "CRM",
    "Compte rendu {code} de {organism}",
    "{organism} a publié le compte rendu métier {code} sur la déclaration {deposit} "
    "(période {month}). Il est consultable dans vos retours.",
)


def caller_organism() -> str:
    """The calling organism's code; refuses a chain whose subject is not an organism."""
    subject = current_principal().subject
    kind, _, code = subject.partition(":")
    if kind != "organism" or not code:
        raise PermissionDenied("NOT_AN_ORGANISM", "deliveries are for organisms' systems")
    return code


def _owned(record: DeliveryRecord | None, delivery: str, organism: str) -> DeliveryRecord:
    """The delivery when it is the organism's; another's is as absent as one that is not."""
    if record is None or record.organism != organism:
        raise NotFound("DELIVERY_NOT_FOUND", f"no delivery {delivery} for {organism}")
    return record


class DeliveryService(dsn_pb2_grpc.DeliveryServiceServicer):
    """Serves the outbox to the organisms."""

    def __init__(
        self, store: DepositStore, files: DepositFiles, trust: NodeTrust, poll_seconds: float,
        tracer: Tracer, *, notices: TopicNotices, changes: ChangeFeed,
    ) -> None:  # fmt: skip
        self.tracer = tracer
        self.notices = notices
        self.changes = changes
        self.store = store
        self.files = files
        self.trust = trust
        self.poll_seconds = poll_seconds

    def _handed(self, record: DeliveryRecord) -> pb.Delivery:
        """The delivery as handed over: a span in the deposit's trace marks it, and the
        organism continues that trace from it."""
        attributes = {
            "interops.deposit_id": record.deposit_id,
            "interops.organism": record.organism,
            "interops.delivery_id": record.id,
        }
        with self.tracer.start_as_current_span(
            "dsn.deliver", context_of(record.trace_parent), attributes=attributes
        ):
            return record.to_proto(traceparent())

    @staticmethod
    def _lease_ms(seconds: int) -> int:
        return max(seconds or DEFAULT_LEASE_SECONDS, MIN_LEASE_SECONDS) * 1000

    async def FetchDeliveries(
        self, request: pb.FetchDeliveriesRequest, context: Context
    ) -> pb.FetchDeliveriesResponse:
        leased, contents = await asyncio.to_thread(
            self._lease, caller_organism(), request.max_deliveries or DEFAULT_BATCH,
            self._lease_ms(request.lease_seconds), request.max_content_bytes,
        )  # fmt: skip
        return pb.FetchDeliveriesResponse(
            deliveries=[self._handed(d) for d in leased], contents=contents
        )

    def _lease(
        self, organism: str, limit: int, lease_ms: int, budget: int
    ) -> tuple[list[DeliveryRecord], list[pb.DeliveryContent]]:
        """The deliveries leased, and the shares of those that fit in `budget` bytes (one
        thread hop for both)."""
        leased = self.store.lease(organism, limit, lease_ms)
        return leased, self._contents(leased, budget) if budget and leased else []

    def _contents(self, leased: list[DeliveryRecord], budget: int) -> list[pb.DeliveryContent]:
        """The shares that fit whole in `budget` bytes, in order (a purged one is left to
        DownloadDelivery, which says so)."""
        # Those that may fit, read in one go (sealed to the organism, as stored); the rest, if
        # any fits after all, one by one below.
        names, room = [], budget
        for record in leased:
            if record.sealed_for_key_id and record.size <= room:
                names.append(self.files.share(record.id))
                room -= record.size
        held = self.files.stored_small(names)
        found = []
        for record in leased:
            if record.size > budget:  # the plaintext's size: what is stored is no smaller
                continue
            content = held.get(self.files.share(record.id))  # held: sealed to the organism
            if content is not None:
                if len(content) <= budget:
                    budget -= len(content)
                    found.append(pb.DeliveryContent(delivery_id=record.id, content=content))
                continue
            parts, size = [], 0
            try:
                for chunk in self._stored(record):
                    parts.append(chunk)
                    size += len(chunk)
                    if size > budget:
                        break
            except FileNotFoundError:
                continue
            if size <= budget:
                budget -= size
                found.append(pb.DeliveryContent(delivery_id=record.id, content=b"".join(parts)))
        return found

    def _stored(self, record: DeliveryRecord) -> Iterator[bytes]:
        """The share's bytes as handed over: as stored when sealed to the organism's key, else
        (routed before shares were sealed to organisms) opened from the node's sealing."""
        name = self.files.share(record.id)
        return self.files.stored(name) if record.sealed_for_key_id else self.files.read(name)

    async def StreamDeliveries(
        self, request: pb.StreamDeliveriesRequest, context: Context
    ) -> AsyncIterator[pb.StreamDeliveriesResponse]:
        organism = caller_organism()
        lease_ms = self._lease_ms(request.lease_seconds)
        # Woken when a share for this organism is routed; leases running out are seen at the
        # next poll.
        with self.changes.watch(DELIVERY, organism) as changed:
            while True:
                leased = await asyncio.to_thread(self.store.lease, organism, 1, lease_ms)
                if leased:
                    yield pb.StreamDeliveriesResponse(delivery=self._handed(leased[0]))
                else:
                    await changed.wait(self.poll_seconds)

    async def _own(self, delivery: str) -> DeliveryRecord:
        record = _owned(await asyncio.to_thread(self.store.delivery, delivery), delivery,
                        caller_organism())  # fmt: skip
        note(resource=f"delivery:{record.id}")
        return record

    async def DownloadDelivery(
        self, request: pb.DownloadDeliveryRequest, context: Context
    ) -> AsyncIterator[pb.DownloadDeliveryResponse]:
        record = await self._own(request.id)
        chunks = self._stored(record)
        try:  # the first chunk says whether the share is there (no separate lookup)
            chunk = await asyncio.to_thread(next, chunks, None)
        except FileNotFoundError:
            if await asyncio.to_thread(self.store.purged, record.deposit_id):
                raise NotFound("SHARE_PURGED", f"{record.id} was acknowledged and its file "
                               "purged after the retention period") from None  # fmt: skip
            raise
        while chunk is not None:
            if chunk:
                yield pb.DownloadDeliveryResponse(chunk=chunk)
            chunk = await asyncio.to_thread(next, chunks, None)

    def _check_receipt(
        self, record: DeliveryRecord, key_id: str, signature: bytes, field: str
    ) -> None:
        """Refuses a receipt that is not a signature of this delivery by one of its
        organism's keys (`field`: where the signature is in the request)."""
        fault = receipt_fault(self.trust.keys.key(key_id), record, signature, time.time())
        if fault is ReceiptFault.NOT_ITS_KEY:
            raise PermissionDenied(
                "UNKNOWN_RECEIPT_KEY", f"{key_id} is not a key of {record.organism}"
            )
        if fault is ReceiptFault.BAD_SIGNATURE:
            raise InvalidArgument(
                "BAD_RECEIPT",
                f"the receipt of {record.id} is not a signature of this delivery's id and "
                "SHA-256 by that key",
                violations=[FieldViolation(field, "does not verify")],
            )

    async def AcknowledgeDelivery(
        self, request: pb.AcknowledgeDeliveryRequest, context: Context
    ) -> pb.AcknowledgeDeliveryResponse:
        record = await self._own(request.id)
        self._check_receipt(record, request.key_id, request.signature, "signature")
        acknowledged = await asyncio.to_thread(
            self.store.acknowledge, record.id, request.key_id, request.signature
        )
        return pb.AcknowledgeDeliveryResponse(delivery=acknowledged.to_proto())

    async def AcknowledgeDeliveries(
        self, request: pb.AcknowledgeDeliveriesRequest, context: Context
    ) -> pb.AcknowledgeDeliveriesResponse:
        receipts = [(r.id, r.key_id, r.signature) for r in request.receipts]
        more = f"+{len(receipts) - 1}" if len(receipts) > 1 else ""
        note(resource=f"delivery:{receipts[0][0]}{more}"[:200])  # refused or not
        acknowledged = await asyncio.to_thread(self._acknowledge, caller_organism(), receipts)
        for record in acknowledged:  # each deposit's trace shows its acknowledgement
            attributes = {"interops.deposit_id": record.deposit_id,
                          "interops.delivery_id": record.id}  # fmt: skip
            with self.tracer.start_as_current_span(
                "dsn.acknowledged", context_of(record.trace_parent), attributes=attributes
            ):
                pass
        return pb.AcknowledgeDeliveriesResponse(deliveries=[r.to_proto() for r in acknowledged])

    def _acknowledge(
        self, organism: str, receipts: list[tuple[str, str, bytes]]
    ) -> list[DeliveryRecord]:
        """Checks that every delivery is the organism's and every receipt its signature over
        the share, then acknowledges them all (one thread hop); nothing when one fails."""
        found = self.store.deliveries_by_id([delivery for delivery, _, _ in receipts])
        for index, (delivery, key_id, signature) in enumerate(receipts):
            record = _owned(found.get(delivery), delivery, organism)
            self._check_receipt(record, key_id, signature, f"receipts[{index}].signature")
        return self.store.acknowledge_all(receipts)

    async def PostReturn(
        self, request: pb.PostReturnRequest, context: Context
    ) -> pb.PostReturnResponse:
        organism = caller_organism()
        delivered = await asyncio.to_thread(
            self.store.delivery, delivery_id(request.deposit_id, organism)
        )
        if delivered is None:
            raise NotFound(
                "DEPOSIT_NOT_DELIVERED", f"deposit {request.deposit_id} was not delivered to you"
            )
        allowed = crm_codes(self.trust.keys.organism(organism))
        if request.code not in allowed:
            raise InvalidArgument(
                "CRM_CODE_NOT_YOURS",
                f"{organism} posts CRM codes {', '.join(allowed) or '(none)'}, not {request.code}",
                violations=[FieldViolation("code", "not a code of this kind of organism")],
            )
        record, _ = await asyncio.to_thread(
            functools.partial(
                self.store.add_return, request.deposit_id, organism, code=request.code,
                status=int(request.status), request_id=request.request_id or None,
                content=request.content, content_type=request.content_type,
                pas_rates=request.pas_rates,
            )
        )  # fmt: skip
        # Sent again with a retried CRM too: the notice's request id makes it once, and a
        # retry after a failure here still sends it.
        deposit = await asyncio.to_thread(self.store.get, request.deposit_id)
        assert deposit is not None
        values = {"organism": organism, "code": request.code, "deposit": deposit.id,
                  "month": deposit.month}  # fmt: skip
        companies = {siret[:9] for siret in deposit.sirets}
        await self.notices.send(CRM_NOTICE, f"crm-{record.id}", values, companies)
        return pb.PostReturnResponse(**{"return": record.to_proto()})
