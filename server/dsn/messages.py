"""Stored deposits, deliveries and returns as interops.dsn.v1 messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from interops.dsn.v1 import dsn_pb2 as pb

from clients.tracing import trace_id_of
from registry.dsn.deposit_store import DeliveryRecord, DepositRecord, ReturnRecord

DEPOSIT_STATES = {
    "RECEIVED": pb.DEPOSIT_STATE_RECEIVED,
    "VALIDATED": pb.DEPOSIT_STATE_VALIDATED,
    "REJECTED": pb.DEPOSIT_STATE_REJECTED,
    "ROUTED": pb.DEPOSIT_STATE_ROUTED,
}
DELIVERY_STATES = {
    "PENDING": pb.DELIVERY_STATE_PENDING,
    "SENT": pb.DELIVERY_STATE_SENT,
    "ACKNOWLEDGED": pb.DELIVERY_STATE_ACKNOWLEDGED,
}
RETURN_KINDS = {"CCO": pb.RETURN_KIND_CCO, "BAN": pb.RETURN_KIND_BAN, "CRM": pb.RETURN_KIND_CRM}


def _time(milliseconds: int) -> Timestamp | None:
    if not milliseconds:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp


def delivery_message(record: DeliveryRecord, trace_parent: str = "") -> pb.Delivery:
    """A delivery as its organism and the declarant see it."""
    return pb.Delivery(
        id=record.id, deposit_id=record.deposit_id, organism=record.organism,
        state=DELIVERY_STATES[record.state], nature=record.nature, size=record.size,
        sha256=record.sha256, attempts=record.attempts,
        lease_expires=_time(record.lease_until if record.state == "SENT" else 0),
        acknowledged_at=_time(record.acknowledged_at), receipt_key_id=record.receipt_key_id or "",
        trace_parent=trace_parent,
    )  # fmt: skip


def deposit_message(record: DepositRecord) -> pb.Deposit:
    """A deposit with its deliveries."""
    return pb.Deposit(
        id=record.id, declarant=record.declarant, request_id=record.request_id or "",
        file_name=record.file_name, size=record.size, sha256=record.sha256,
        state=DEPOSIT_STATES[record.state],
        receipt=pb.RECEIPT_ARE if record.receipt == "ARE" else pb.RECEIPT_AEE,
        rejection_code=record.rejection_code, rejection_message=record.rejection_message,
        nature=record.nature, type=record.type, month=record.month, sirets=record.sirets,
        individuals=record.individuals,
        validation=pb.ValidationSummary(
            blocking=record.blocking, warnings=record.warnings, norm_version=record.norm_version
        ),
        deliveries=[delivery_message(d) for d in record.deliveries],
        received_at=_time(record.received_at), updated_at=_time(record.updated_at),
        version=record.version, trace_id=trace_id_of(record.trace_parent),
    )  # fmt: skip


def return_message(record: ReturnRecord) -> pb.Return:
    """A return; its payload is the serialized Return body the service stored."""
    message = pb.Return.FromString(record.payload)
    message.MergeFrom(
        pb.Return(
            id=record.id,
            deposit_id=record.deposit_id,
            organism=record.organism,
            kind=RETURN_KINDS[record.kind],
            code=record.code,
            status=record.status,  # type: ignore[arg-type]
            created_at=_time(record.created_at),
            position=record.position,
        )
    )
    return message


def return_payload(content: bytes, content_type: str, pas_rates: list[pb.PasRate]) -> bytes:
    """What a return's row seals: its content and PAS rates."""
    return pb.Return(
        content=content, content_type=content_type, pas_rates=pas_rates
    ).SerializeToString()
