"""The DSN calls of `Client`: deposits and returns for declarants, deliveries for organisms."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
from interops.dsn.v1 import dsn_pb2 as pb

from clients.errors import from_rpc_error
from clients.paging import pages
from token_suite.chain import Signer
from token_suite.receipts import sign_receipt

DEPOSIT_CHUNK = 1024 * 1024
T = TypeVar("T")


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


class DsnCalls:
    """Mixed into Client, which provides the stubs and the call helpers."""

    deposits: Any
    deliveries: Any
    _unary: Callable[..., Any]
    _stream: Callable[..., Generator[Any, None, None]]

    # -- declarants ------------------------------------------------------------------------

    def submit_deposit(
        self,
        path: Path,
        *,
        request_id: str = "",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> pb.Deposit:
        """Deposits a DSN file; the answer carries its AEE or ARE."""
        try:
            response = self.deposits.SubmitDeposit(
                deposit_requests(path, request_id, on_progress), timeout=None
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        deposit: pb.Deposit = response.deposit
        return deposit

    def get_deposit(self, deposit_id: str) -> pb.Deposit:
        """One of the caller's deposits."""
        request = pb.GetDepositRequest(id=deposit_id)
        deposit: pb.Deposit = self._unary(self.deposits.GetDeposit, request).deposit
        return deposit

    def list_deposits(self, *, page_size: int = 0) -> Iterator[pb.Deposit]:
        """Every deposit of the caller, newest first, page after page."""
        request = pb.ListDepositsRequest(page_size=page_size)
        call = functools.partial(self._unary, self.deposits.ListDeposits)
        yield from pages(call, request, "deposits")

    def watch_deposit(self, deposit_id: str) -> Iterator[pb.Deposit]:
        """The deposit now and at each change, until nothing more will change."""
        request = pb.WatchDepositRequest(id=deposit_id)
        for response in self._stream(self.deposits.WatchDeposit, request):
            yield response.deposit

    def list_returns(self, deposit_id: str = "", *, page_size: int = 0) -> Iterator[pb.Return]:
        """The caller's returns (of one deposit when given), oldest first."""
        request = pb.ListReturnsRequest(deposit_id=deposit_id, page_size=page_size)
        call = functools.partial(self._unary, self.deposits.ListReturns)
        yield from pages(call, request, "returns")

    def watch_returns(
        self, after_position: int = 0, *, follow: bool = False
    ) -> Generator[pb.Return, None, None]:
        """The caller's returns after a position; with follow, new ones as they come."""
        request = pb.WatchReturnsRequest(after_position=after_position, follow=follow)
        for response in self._stream(self.deposits.WatchReturns, request):
            yield getattr(response, "return")

    # -- organisms -------------------------------------------------------------------------

    def fetch_deliveries(
        self, *, max_deliveries: int = 0, lease_seconds: int = 0
    ) -> list[pb.Delivery]:
        """Leases the caller's pending deliveries."""
        request = pb.FetchDeliveriesRequest(
            max_deliveries=max_deliveries, lease_seconds=lease_seconds
        )
        return list(self._unary(self.deliveries.FetchDeliveries, request).deliveries)

    def stream_deliveries(self, *, lease_seconds: int = 0) -> Generator[pb.Delivery, None, None]:
        """Leases deliveries as they come, until the generator is closed."""
        request = pb.StreamDeliveriesRequest(lease_seconds=lease_seconds)
        for response in self._stream(self.deliveries.StreamDeliveries, request):
            yield response.delivery

    def download_delivery(self, delivery_id: str) -> bytes:
        """The bytes of one of the caller's deliveries."""
        request = pb.DownloadDeliveryRequest(id=delivery_id)
        return b"".join(r.chunk for r in self._stream(self.deliveries.DownloadDelivery, request))

    def acknowledge_delivery(
        self, delivery: pb.Delivery, signer: Signer, sha256: bytes | None = None
    ) -> pb.Delivery:
        """Acknowledges with a receipt signed over the SHA-256 of what was received (by default
        the delivery's announced digest: pass the digest of the bytes actually received)."""
        digest = sha256 if sha256 is not None else delivery.sha256
        request = pb.AcknowledgeDeliveryRequest(
            id=delivery.id, key_id=signer.key_id,
            signature=sign_receipt(signer, delivery.id, digest),
        )  # fmt: skip
        acknowledged: pb.Delivery = self._unary(
            self.deliveries.AcknowledgeDelivery, request
        ).delivery
        return acknowledged

    def post_return(
        self,
        deposit_id: str,
        code: str,
        status: pb.ReturnStatus.ValueType,
        *,
        content: bytes = b"",
        content_type: str = "",
        pas_rates: list[pb.PasRate] | None = None,
        request_id: str = "",
    ) -> pb.Return:
        """Posts a CRM for a deposit delivered to the caller."""
        request = pb.PostReturnRequest(
            deposit_id=deposit_id, code=code, status=status, content=content,
            content_type=content_type, pas_rates=pas_rates or [], request_id=request_id,
        )  # fmt: skip
        response = self._unary(self.deliveries.PostReturn, request)
        posted: pb.Return = getattr(response, "return")
        return posted
