"""The habilitation calls of `Client` that are more than one unary call: listings page after
page, the export stream, and a bulk file followed to its end."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from interops.habilitation.v1 import habilitation_pb2 as pb
from interops.operation.v1 import operation_pb2 as op

from clients.paging import pages


class HabilitationCalls:
    """Mixed into Client, which provides the stubs and the call helpers."""

    habilitations: Any
    _stream: Callable[..., Generator[Any, None, None]]

    def list_habilitations(self, account_id: int = 0) -> Iterator[pb.Habilitation]:
        """Every habilitation of the caller's company (or of one account)."""
        request = pb.ListHabilitationsRequest(account_id=account_id, page_size=1000)
        return pages(self.habilitations.ListHabilitations, request, "habilitations")

    def list_accounts(self) -> Iterator[pb.Account]:
        """Every account of the caller's company."""
        request = pb.ListAccountsRequest(page_size=1000)
        return pages(self.habilitations.ListAccounts, request, "accounts")

    def list_admin_acts(self) -> Iterator[pb.AdminAct]:
        """Every administrative act of the caller's company, oldest first."""
        request = pb.ListAdminActsRequest(page_size=1000)
        return pages(self.habilitations.ListAdminActs, request, "acts")

    def export_habilitations(self) -> bytes:
        """The company's portfolios and habilitations as a bulk file."""
        method = self.habilitations._stub.ExportHabilitations
        return b"".join(r.chunk for r in self._stream(method, pb.ExportHabilitationsRequest()))

    def import_habilitations(self, content: bytes, request_id: str = "") -> op.Operation:
        """Queues a bulk file; its operation (follow it with `wait_bulk_operation`)."""
        request = pb.ImportHabilitationsRequest(content=content, request_id=request_id)
        operation: op.Operation = self.habilitations.ImportHabilitations(request).operation
        return operation

    def wait_bulk_operation(
        self, name: str, timeout: float = 600.0, poll_seconds: float = 0.2
    ) -> op.Operation:
        """The bulk operation once done; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            request = pb.GetBulkOperationRequest(name=name)
            operation: op.Operation = self.habilitations.GetBulkOperation(request).operation
            if operation.done:
                return operation
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} is not done after {timeout} s")
            time.sleep(poll_seconds)
