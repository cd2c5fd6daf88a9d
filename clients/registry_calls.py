"""The calls of the company registry and of its import operations, written once for both
clients (clients/calls.py): lookups, listings page after page, the stock upload, the feeds."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from interops.operation.v1 import operation_pb2 as op
from interops.registry.v1 import registry_pb2 as pb

from clients.calls import Pages, Steps, Stream, Unary, Upload

UPLOAD_CHUNK = 1024 * 1024


def upload_requests(
    path: Path,
    kind: pb.StockKind.ValueType = pb.STOCK_KIND_UNSPECIFIED,
    request_id: str = "",
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[pb.ImportStockRequest]:
    """The messages of an ImportStock upload: the header, then the file in chunks."""
    total = os.path.getsize(path)
    yield pb.ImportStockRequest(
        header=pb.ImportStockRequest.Header(
            kind=kind, request_id=request_id, file_name=path.name[:255], total_bytes=total
        )
    )
    sent = 0
    with path.open("rb") as file:
        while chunk := file.read(UPLOAD_CHUNK):
            yield pb.ImportStockRequest(chunk=chunk)
            sent += len(chunk)
            if on_progress is not None:
                on_progress(sent, total)


def get_company(siren: str) -> Steps[pb.Company]:
    """The company with this SIREN."""
    answer: pb.GetCompanyResponse = yield Unary(pb.GetCompanyRequest(siren=siren))
    return answer.company


def get_establishment(siret: str) -> Steps[pb.Establishment]:
    """The establishment with this SIRET."""
    answer: pb.GetEstablishmentResponse = yield Unary(pb.GetEstablishmentRequest(siret=siret))
    return answer.establishment


def batch_get_establishments(sirets: list[str]) -> Steps[pb.BatchGetEstablishmentsResponse]:
    """Up to 1,000 establishments; unknown SIRETs come back in missing_sirets."""
    answer: pb.BatchGetEstablishmentsResponse = yield Unary(
        pb.BatchGetEstablishmentsRequest(sirets=sirets)
    )
    return answer


def list_establishments(
    siren: str, *, active_only: bool = False, page_size: int = 0
) -> Pages[pb.Establishment]:
    """Every establishment of a company, fetching page after page."""
    request = pb.ListEstablishmentsRequest(
        siren=siren, active_only=active_only, page_size=page_size
    )
    return Pages(request, "establishments")


def search_companies(name_prefix: str, *, page_size: int = 0) -> Pages[pb.Company]:
    """Every company whose name starts with the prefix, fetching page after page."""
    return Pages(pb.SearchCompaniesRequest(name_prefix=name_prefix, page_size=page_size),
                 "companies")  # fmt: skip


def validate_siret(siret: str) -> Steps[pb.ValidateSiretResponse]:
    """Format, check digit, existence and active state of a SIRET."""
    answer: pb.ValidateSiretResponse = yield Unary(pb.ValidateSiretRequest(siret=siret))
    return answer


def import_stock(
    path: Path,
    *,
    kind: pb.StockKind.ValueType = pb.STOCK_KIND_UNSPECIFIED,
    request_id: str = "",
    on_progress: Callable[[int, int], None] | None = None,
) -> Steps[op.Operation]:
    """Uploads a Sirene stock file; returns the import operation (follow it with
    watch_operation)."""
    requests = upload_requests(path, kind, request_id, on_progress)
    answer: pb.ImportStockResponse = yield Upload(pb.ImportStockRequest, requests)
    return answer.operation


def watch_changes(
    after_position: int = 0, *, follow: bool = False
) -> Stream[pb.WatchChangesResponse]:
    """Changes of the registry after a position; with follow, new ones as they come.

    Closing the iterator ends the stream on the server too."""
    request = pb.WatchChangesRequest(after_position=after_position, follow=follow)
    return Stream(request, lambda response: response)


def get_operation(name: str) -> Steps[op.Operation]:
    """The current state of an operation."""
    answer: op.GetOperationResponse = yield Unary(op.GetOperationRequest(name=name))
    return answer.operation


def watch_operation(name: str) -> Stream[op.Operation]:
    """The operation each time it progresses, until it is done."""
    return Stream(op.WatchOperationRequest(name=name), lambda response: response.operation)
