"""The DSN calls, written once for both clients (clients/calls.py): deposits and returns for
declarants, deliveries for organisms."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from interops.dsn.v1 import dsn_pb2 as pb

from clients.calls import Collect, Pages, Steps, Stream, Unary, Upload
from token_suite.chain import Signer
from token_suite.receipts import sign_receipt
from token_suite.sealed_share import MAGIC, open_share

DEPOSIT_CHUNK = 1024 * 1024


def deposit_requests(
    path: Path, request_id: str = "", on_progress: Callable[[int, int], None] | None = None
) -> Iterator[pb.SubmitDepositRequest]:
    """The messages of a deposit: the header, then the file in chunks."""
    total = path.stat().st_size
    header = pb.SubmitDepositRequest.Header(request_id=request_id, file_name=path.name[:255])
    yield pb.SubmitDepositRequest(header=header)
    sent = 0
    with path.open("rb") as file:
        while chunk := file.read(DEPOSIT_CHUNK):
            yield pb.SubmitDepositRequest(chunk=chunk)
            sent += len(chunk)
            if on_progress is not None:
                on_progress(sent, total)


# -- declarants ----------------------------------------------------------------------------


def submit_deposit(
    path: Path, *, request_id: str = "", on_progress: Callable[[int, int], None] | None = None
) -> Steps[pb.Deposit]:
    """Deposits a DSN file; the answer carries its AEE or ARE."""
    requests = deposit_requests(path, request_id, on_progress)
    answer: pb.SubmitDepositResponse = yield Upload(pb.SubmitDepositRequest, requests)
    return answer.deposit


def get_deposit(deposit_id: str) -> Steps[pb.Deposit]:
    """One of the caller's deposits."""
    answer: pb.GetDepositResponse = yield Unary(pb.GetDepositRequest(id=deposit_id))
    return answer.deposit


def list_deposits(*, page_size: int = 0) -> Pages[pb.Deposit]:
    """Every deposit of the caller, newest first, page after page."""
    return Pages(pb.ListDepositsRequest(page_size=page_size), "deposits")


def watch_deposit(deposit_id: str) -> Stream[pb.Deposit]:
    """The deposit now and at each change, until nothing more will change."""
    return Stream(pb.WatchDepositRequest(id=deposit_id), lambda response: response.deposit)


def list_returns(deposit_id: str = "", *, page_size: int = 0) -> Pages[pb.Return]:
    """The caller's returns (of one deposit when given), oldest first."""
    return Pages(pb.ListReturnsRequest(deposit_id=deposit_id, page_size=page_size), "returns")


def watch_returns(after_position: int = 0, *, follow: bool = False) -> Stream[pb.Return]:
    """The caller's returns after a position; with follow, new ones as they come."""
    request = pb.WatchReturnsRequest(after_position=after_position, follow=follow)
    return Stream(request, lambda response: getattr(response, "return"))


# -- organisms -----------------------------------------------------------------------------


def fetch_deliveries(
    *, max_deliveries: int = 0, lease_seconds: int = 0
) -> Steps[list[pb.Delivery]]:
    """Leases the caller's pending deliveries."""
    answer: pb.FetchDeliveriesResponse = yield Unary(
        pb.FetchDeliveriesRequest(max_deliveries=max_deliveries, lease_seconds=lease_seconds)
    )
    return list(answer.deliveries)


# What a lease brings of its shares at most (FetchDeliveriesRequest.max_content_bytes).
MAX_CONTENT_BYTES = 3 * 1024 * 1024


def fetch_shares(
    *, max_deliveries: int = 0, lease_seconds: int = 0, max_content_bytes: int = MAX_CONTENT_BYTES
) -> Steps[list[tuple[pb.Delivery, bytes | None]]]:
    """Leases the caller's pending deliveries with their shares as stored, as many as fit in
    `max_content_bytes` (open them with `open_stored_share`); None for a share that did not
    fit: download it (`download_share`)."""
    answer: pb.FetchDeliveriesResponse = yield Unary(
        pb.FetchDeliveriesRequest(
            max_deliveries=max_deliveries, lease_seconds=lease_seconds,
            max_content_bytes=max_content_bytes,
        )
    )  # fmt: skip
    contents = {content.delivery_id: content.content for content in answer.contents}
    return [(delivery, contents.get(delivery.id)) for delivery in answer.deliveries]


def stream_deliveries(*, lease_seconds: int = 0) -> Stream[pb.Delivery]:
    """Leases deliveries as they come, until the iterator is closed."""
    request = pb.StreamDeliveriesRequest(lease_seconds=lease_seconds)
    return Stream(request, lambda response: response.delivery)


def download_delivery(delivery_id: str) -> Steps[bytes]:
    """The bytes of one of the caller's deliveries as the node stores them: sealed to the
    organism's encryption key (see `download_share`, which opens them)."""
    answers: list[pb.DownloadDeliveryResponse] = yield Collect(
        pb.DownloadDeliveryRequest(id=delivery_id)
    )
    return b"".join(answer.chunk for answer in answers)


def download_share(delivery_id: str, encryption_key: bytes) -> Steps[bytes]:
    """The plaintext of one of the caller's deliveries: downloaded, then opened with the
    organism's raw X25519 private key (the one Delivery.sealed_for_key_id names); raises
    token_suite.sealed_share.ShareError when it does not open (another key, altered, cut short,
    another delivery's). A share routed before shares were sealed to organisms comes in clear."""
    stored = yield from download_delivery(delivery_id)
    return open_stored_share(stored, delivery_id, encryption_key)


def open_stored_share(stored: bytes, delivery_id: str, encryption_key: bytes) -> bytes:
    """The plaintext of a share as DownloadDelivery streams it (see `download_share`)."""
    if not stored.startswith(MAGIC):  # a DSN starts with S10: routed before shares were sealed
        return stored
    return b"".join(open_share([stored], delivery_id, encryption_key))


def acknowledge_delivery(
    delivery: pb.Delivery, signer: Signer, sha256: bytes | None = None
) -> Steps[pb.Delivery]:
    """Acknowledges with a receipt signed over the SHA-256 of what was received (by default
    the delivery's announced digest: pass the digest of the bytes actually received)."""
    digest = sha256 if sha256 is not None else delivery.sha256
    request = pb.AcknowledgeDeliveryRequest(
        id=delivery.id, key_id=signer.key_id,
        signature=sign_receipt(signer, delivery.id, digest),
    )  # fmt: skip
    answer: pb.AcknowledgeDeliveryResponse = yield Unary(request)
    return answer.delivery


def acknowledge_deliveries(
    received: Sequence[tuple[pb.Delivery, bytes]], signer: Signer
) -> Steps[list[pb.Delivery]]:
    """Acknowledges up to 100 deliveries in one call, each with a receipt signed over the
    SHA-256 given (that of the bytes actually received); all or none."""
    receipts = [
        pb.AcknowledgeDeliveryRequest(id=delivery.id, key_id=signer.key_id,
                           signature=sign_receipt(signer, delivery.id, digest))
        for delivery, digest in received
    ]  # fmt: skip
    answer: pb.AcknowledgeDeliveriesResponse = yield Unary(
        pb.AcknowledgeDeliveriesRequest(receipts=receipts)
    )
    return list(answer.deliveries)


def post_return(
    deposit_id: str,
    code: str,
    status: pb.ReturnStatus.ValueType,
    *,
    content: bytes = b"",
    content_type: str = "",
    pas_rates: list[pb.PasRate] | None = None,
    request_id: str = "",
) -> Steps[pb.Return]:
    """Posts a CRM for a deposit delivered to the caller."""
    request = pb.PostReturnRequest(
        deposit_id=deposit_id, code=code, status=status, content=content,
        content_type=content_type, pas_rates=pas_rates or [], request_id=request_id,
    )  # fmt: skip
    answer: pb.PostReturnResponse = yield Unary(request)
    posted: pb.Return = getattr(answer, "return")
    return posted
