"""The operator page: one exchange followed across organisms, from the audit journal."""

from __future__ import annotations

from typing import Any

from interops.audit.v1 import audit_pb2
from starlette.requests import Request
from starlette.responses import Response

from clients.errors import InteropsError
from registry.kernel.rights import AUDIT_READ
from server.web.node_calls import NodeCalls
from server.web.rendering import Pages
from server.web.sessions import Session

AUDIT = "/interops.audit.v1.AuditService"


class OperatorPages:
    """The pages of a signed-in operator (who holds audit.read)."""

    def __init__(self, node: NodeCalls, pages: Pages) -> None:
        self.node = node
        self.pages = pages

    async def _call(self, session: Session, method: str, request: Any, response: Any) -> Any:
        return await self.node.unary(method, request, response, session.token,
                                     session.proof(method))  # fmt: skip

    async def operator(self, request: Request) -> Response:
        """GET /operator?trace_id=...|deposit_id=...: the journal's records of one exchange."""
        session = self.pages.signed_in(request)
        if isinstance(session, Response):
            return session
        if not session.holds(AUDIT_READ):
            return self.pages.error(request, 403, "Cette page est réservée aux opérateurs.")
        trace_id = request.query_params.get("trace_id", "").strip().lower()
        deposit_id = request.query_params.get("deposit_id", "").strip()
        records: list[audit_pb2.AuditRecord] = []
        try:
            if deposit_id and not trace_id:
                named = await self._records(session, resource=f"deposit:{deposit_id}")
                trace_id = next((r.trace_id for r in named if r.trace_id), "")
            if trace_id:
                records = await self._records(session, trace_id=trace_id)
        except InteropsError as error:
            return self.pages.call_failed(request, error)
        return self.pages.render(request, "operator.html", session, records=records,
                                 trace_id=trace_id, deposit_id=deposit_id,
                                 searched=bool(trace_id or deposit_id))  # fmt: skip

    async def _records(
        self, session: Session, trace_id: str = "", resource: str = ""
    ) -> list[audit_pb2.AuditRecord]:
        request = audit_pb2.ListRecordsRequest(page_size=500, trace_id=trace_id, resource=resource)
        answer = await self._call(session, f"{AUDIT}/ListRecords", request,
                                  audit_pb2.ListRecordsResponse)  # fmt: skip
        return list(answer.records)
