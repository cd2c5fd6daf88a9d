"""The habilitation calls that are more than one unary call, written once for both clients
(clients/calls.py): listings page after page, the export stream, and a bulk file followed to
its end."""

from __future__ import annotations

import time

from interops.habilitation.v1 import habilitation_pb2 as pb
from interops.operation.v1 import operation_pb2 as op

from clients.calls import Collect, Pages, Pause, Steps, Unary


def list_habilitations(account_id: int = 0) -> Pages[pb.Habilitation]:
    """Every habilitation of the caller's company (or of one account)."""
    return Pages(pb.ListHabilitationsRequest(account_id=account_id, page_size=1000),
                 "habilitations")  # fmt: skip


def list_accounts() -> Pages[pb.Account]:
    """Every account of the caller's company."""
    return Pages(pb.ListAccountsRequest(page_size=1000), "accounts")


def list_admin_acts() -> Pages[pb.AdminAct]:
    """Every administrative act of the caller's company, oldest first."""
    return Pages(pb.ListAdminActsRequest(page_size=1000), "acts")


def export_habilitations() -> Steps[bytes]:
    """The company's portfolios and habilitations as a bulk file."""
    answers: list[pb.ExportHabilitationsResponse] = yield Collect(pb.ExportHabilitationsRequest())
    return b"".join(answer.chunk for answer in answers)


def import_habilitations(content: bytes, request_id: str = "") -> Steps[op.Operation]:
    """Queues a bulk file; its operation (follow it with `wait_bulk_operation`)."""
    answer: pb.ImportHabilitationsResponse = yield Unary(
        pb.ImportHabilitationsRequest(content=content, request_id=request_id)
    )
    return answer.operation


def wait_bulk_operation(
    name: str, timeout: float = 600.0, poll_seconds: float = 0.2
) -> Steps[op.Operation]:
    """The bulk operation once done; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer: pb.GetBulkOperationResponse = yield Unary(pb.GetBulkOperationRequest(name=name))
        if answer.operation.done:
            return answer.operation
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} is not done after {timeout} s")
        yield Pause(poll_seconds)
