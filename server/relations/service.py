"""interops.relations.v1.RelationsService: declarant/declared links and employments, each call
scoped by the caller's token chain.

An establishment is in the caller's perimeter when its relations.read grant covers it, or, for a
declarant of the portal (subject "declarant:..."), when a SIRET its grant covers declared it in
DSN: the implicit mandate (the rules: registry/relations/perimeter.py). Organisms see exactly
what their grant covers. A NIR asked about is never written to a log, a span or an error message.
"""

from __future__ import annotations

import asyncio
import functools

from interops.relations.v1 import relations_pb2 as pb
from interops.relations.v1 import relations_pb2_grpc

from registry.kernel.rights import RELATIONS_READ
from registry.relations.perimeter import (
    linked_in,
    readable_declarations,
    sees_declared_by,
    sees_link,
)
from registry.relations.store import Link, RelationsStore
from server.audit.journal import note
from server.rpc import page_tokens
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import PermissionDenied
from server.rpc.handler_wrapping import Context
from token_suite.grants import Scope


def _scope() -> tuple[Scope, bool]:
    """The caller's relations.read perimeter, and whether the implicit mandate applies."""
    principal = current_principal()
    return principal.grants.get(RELATIONS_READ, Scope()), principal.subject.startswith("declarant:")


def _refused(siret: str) -> PermissionDenied:
    return PermissionDenied("NOT_IN_YOUR_PERIMETER", f"{siret} is not in your perimeter")


def _link_message(link: Link, since: str) -> pb.DeclaredLink:
    return pb.DeclaredLink(
        declarant_siret=link.declarant_siret,
        declared_siret=link.declared_siret,
        first_period=link.first_period,
        last_period=link.last_period,
        last_deposit_id=link.last_deposit,
        ended_period=link.ended_period,
        live=link.live(since),
    )


class RelationsService(relations_pb2_grpc.RelationsServiceServicer):
    """Answers from the relations store, within the caller's perimeter."""

    def __init__(self, store: RelationsStore) -> None:
        self.store = store

    async def _readable(self, siret: str) -> list[str] | None:
        """Whose declarations of the establishment the caller reads (None: all of them);
        refuses an establishment outside the caller's perimeter."""
        scope, mandate = _scope()
        if scope.includes_siret(siret):  # the common case: no thread, no database
            return None
        found = None if not mandate else await asyncio.to_thread(
            functools.partial(readable_declarations, self.store, scope, siret, declarant=mandate)
        )  # fmt: skip
        if not found:
            raise _refused(siret)
        return found

    async def ListDeclaredEstablishments(
        self, request: pb.ListDeclaredEstablishmentsRequest, context: Context
    ) -> pb.ListDeclaredEstablishmentsResponse:
        scope, _ = _scope()
        if not sees_declared_by(scope, request.declarant_siret):
            raise _refused(request.declarant_siret)
        note(resource=request.declarant_siret)
        query = ("declared", request.declarant_siret)
        after = page_tokens.decode(request.page_token, query, 1)
        size = page_tokens.page_size(request.page_size)
        links = await asyncio.to_thread(
            self.store.declared_by, request.declarant_siret, size + 1, after[0] if after else ""
        )
        links, token = page_tokens.cut(links, size, query, lambda link: [link.declared_siret])
        return pb.ListDeclaredEstablishmentsResponse(
            links=[_link_message(link, self.store.since()) for link in links], next_page_token=token
        )

    async def CheckDeclarationLink(
        self, request: pb.CheckDeclarationLinkRequest, context: Context
    ) -> pb.CheckDeclarationLinkResponse:
        scope, _ = _scope()
        declarant, declared = request.declarant_siret, request.declared_siret
        if not sees_link(scope, declarant, declared):
            raise _refused(declarant)
        note(resource=declared)
        link = await asyncio.to_thread(self.store.link, declarant, declared)
        if link is None:
            return pb.CheckDeclarationLinkResponse(linked=False)
        return pb.CheckDeclarationLinkResponse(
            linked=linked_in(link, request.period), link=_link_message(link, self.store.since())
        )

    async def ListEmployees(
        self, request: pb.ListEmployeesRequest, context: Context
    ) -> pb.ListEmployeesResponse:
        declared_by = await self._readable(request.siret)
        note(resource=request.siret)
        query = ("employees", request.siret, request.period_start, request.period_end)
        after = page_tokens.decode(request.page_token, query, 1)
        size = page_tokens.page_size(request.page_size)
        found = await asyncio.to_thread(
            functools.partial(
                self.store.employees, request.siret, request.period_start, request.period_end,
                size + 1, int(after[0]) if after else 0, declared_by=declared_by,
            )
        )  # fmt: skip
        found, token = page_tokens.cut(found, size, query, lambda e: [str(e.id)])
        return pb.ListEmployeesResponse(
            employments=[
                pb.Employment(siret=e.siret, nir=e.nir, contract_start=e.start,
                              contract_end=e.end)
                for e in found
            ],
            next_page_token=token,
        )  # fmt: skip

    async def CheckEmployment(
        self, request: pb.CheckEmploymentRequest, context: Context
    ) -> pb.CheckEmploymentResponse:
        declared_by = await self._readable(request.siret)
        note(resource=request.siret)
        found = await asyncio.to_thread(
            self.store.employed, request.siret, request.nir, request.date, declared_by
        )
        if found is None:
            return pb.CheckEmploymentResponse(employed=False)
        start, end = found
        return pb.CheckEmploymentResponse(employed=True, contract_start=start, contract_end=end)
