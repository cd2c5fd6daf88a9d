"""interops.registry.v1.RegistryService: the RCD over gRPC, within the caller's registry.read
perimeter (server/rcd/perimeter.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from interops.registry.v1 import registry_pb2 as pb
from interops.registry.v1 import registry_pb2_grpc

from registry.kernel.change_feed import REGISTRY, ChangeFeed
from registry.rcd.identifiers import check_siren, check_siret
from registry.rcd.records import AdministrativeState, CompanyRecord, name_key
from registry.rcd.store import RcdStore
from server.operation.service import operation_message
from server.rcd.establishment_cache import EstablishmentCache
from server.rcd.import_jobs import ImportJobs
from server.rcd.messages import company_message, establishment_message
from server.rcd.perimeter import covers_company, refused, registry_scope
from server.rpc import page_tokens
from server.rpc.errors import FieldViolation, InvalidArgument, NotFound
from server.rpc.handler_wrapping import Context

FEED_BATCH = 500


def _require_key(value: str, field: str, kind: str) -> None:
    """The contract checks the format; the check digit is checked here."""
    check = check_siret(value) if kind == "SIRET" else check_siren(value)
    if not check.ok:
        raise InvalidArgument(
            f"INVALID_{kind}",
            f"{field}: {check.message}",
            violations=[FieldViolation(field, check.message, "checksum")],
        )


class RegistryService(registry_pb2_grpc.RegistryServiceServicer):
    """Serves the RCD from the store; database calls run in worker threads."""

    def __init__(
        self,
        store: RcdStore,
        imports: ImportJobs,
        cache: EstablishmentCache,
        poll_seconds: float,
        *,
        changes: ChangeFeed,
    ) -> None:
        self.store = store
        self.imports = imports
        self.cache = cache
        self.poll_seconds = poll_seconds
        self.changes = changes

    async def GetCompany(
        self, request: pb.GetCompanyRequest, context: Context
    ) -> pb.GetCompanyResponse:
        _require_key(request.siren, "siren", "SIREN")
        if not covers_company(registry_scope(), request.siren):
            raise refused(request.siren)
        record = await asyncio.to_thread(self.store.get_company, request.siren)
        if record is None:
            raise NotFound("COMPANY_NOT_FOUND", f"no company with SIREN {request.siren}")
        return pb.GetCompanyResponse(company=company_message(record))

    async def GetEstablishment(
        self, request: pb.GetEstablishmentRequest, context: Context
    ) -> pb.GetEstablishmentResponse:
        _require_key(request.siret, "siret", "SIRET")
        if not registry_scope().includes_siret(request.siret):  # a dict lookup: the hot path
            raise refused(request.siret)
        record = await self.cache.get(request.siret)
        if record is None:
            raise NotFound(
                "ESTABLISHMENT_NOT_FOUND", f"no establishment with SIRET {request.siret}"
            )
        return pb.GetEstablishmentResponse(establishment=establishment_message(record))

    async def BatchGetEstablishments(
        self, request: pb.BatchGetEstablishmentsRequest, context: Context
    ) -> pb.BatchGetEstablishmentsResponse:
        violations = [
            FieldViolation(f"sirets[{i}]", check.message, "checksum")
            for i, siret in enumerate(request.sirets)
            if not (check := check_siret(siret)).ok
        ]
        if violations:
            raise InvalidArgument(
                "INVALID_SIRET", "some SIRETs are not valid", violations=violations
            )
        asked = list(dict.fromkeys(request.sirets))
        scope = registry_scope()
        inside, outside = asked, []
        if not scope.everything:
            inside = [s for s in asked if scope.includes_siret(s)]
            outside = [s for s in asked if not scope.includes_siret(s)]
        # Those outside are not read at all: the answer cannot tell whether they exist.
        found = await asyncio.to_thread(self.store.get_establishments, inside) if inside else {}
        return pb.BatchGetEstablishmentsResponse(
            establishments=[establishment_message(found[s]) for s in inside if s in found],
            missing_sirets=[s for s in inside if s not in found],
            outside_perimeter_sirets=outside,
        )

    async def ListEstablishments(
        self, request: pb.ListEstablishmentsRequest, context: Context
    ) -> pb.ListEstablishmentsResponse:
        _require_key(request.siren, "siren", "SIREN")
        scope = registry_scope()
        if not covers_company(scope, request.siren):
            raise refused(request.siren)
        # A company in the perimeter through some of its SIRETs only: they are filtered in the
        # query, so that pages stay full and their tokens resume inside the perimeter.
        within = None if request.siren in scope.sirens else scope
        query = ("ListEstablishments", request.siren, request.active_only)
        after = page_tokens.decode(request.page_token, query, 1)
        size = page_tokens.page_size(request.page_size)
        records = await asyncio.to_thread(
            self.store.list_establishments, request.siren, after[0] if after else "", size + 1,
            active_only=request.active_only, within=within,
        )  # fmt: skip
        page, token = page_tokens.cut(records, size, query, lambda r: [r.siret])
        return pb.ListEstablishmentsResponse(
            establishments=[establishment_message(r) for r in page], next_page_token=token
        )

    async def SearchCompanies(
        self, request: pb.SearchCompaniesRequest, context: Context
    ) -> pb.SearchCompaniesResponse:
        prefix = name_key(request.name_prefix)
        if not prefix:
            raise InvalidArgument(
                "INVALID_NAME_PREFIX",
                "name_prefix holds no letter or digit",
                violations=[FieldViolation("name_prefix", "holds no letter or digit")],
            )
        query = ("SearchCompanies", prefix)
        after = page_tokens.decode(request.page_token, query, 2)
        size = page_tokens.page_size(request.page_size)
        found: list[tuple[str, CompanyRecord]] = await asyncio.to_thread(
            self.store.search_companies,
            prefix, (after[0], after[1]) if after else None, size + 1, registry_scope(),
        )  # fmt: skip
        page, token = page_tokens.cut(found, size, query, lambda r: [r[0], r[1].siren])
        return pb.SearchCompaniesResponse(
            companies=[company_message(record) for _, record in page], next_page_token=token
        )

    async def ValidateSiret(
        self, request: pb.ValidateSiretRequest, context: Context
    ) -> pb.ValidateSiretResponse:
        check = check_siret(request.siret)
        if check.problem is not None:
            return pb.ValidateSiretResponse(
                valid=False, problem=check.problem.to_proto(), message=check.message
            )
        if not registry_scope().includes_siret(request.siret):
            raise refused(request.siret)
        found = await asyncio.to_thread(self.store.get_establishments, [request.siret])
        record = found.get(request.siret)
        if record is None:
            return pb.ValidateSiretResponse(
                valid=False,
                problem=pb.SIRET_PROBLEM_UNKNOWN,
                message="well formed, but no establishment has this SIRET in the registry",
            )
        establishment = establishment_message(record)
        if record.state == AdministrativeState.CEASED:
            return pb.ValidateSiretResponse(
                valid=False,
                problem=pb.SIRET_PROBLEM_CEASED,
                message="the establishment is closed",
                establishment=establishment,
            )
        return pb.ValidateSiretResponse(
            valid=True, message="valid and active", establishment=establishment
        )

    async def ImportStock(
        self, request_iterator: AsyncIterator[pb.ImportStockRequest], context: Context
    ) -> pb.ImportStockResponse:
        record = await self.imports.receive(request_iterator)
        return pb.ImportStockResponse(operation=operation_message(record))

    async def WatchChanges(
        self, request: pb.WatchChangesRequest, context: Context
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        position = request.after_position
        scope = registry_scope()
        with self.changes.watch(REGISTRY) as changed:
            while True:
                changes = await asyncio.to_thread(
                    self.store.changes_after, position, FEED_BATCH, scope
                )
                for change in changes:
                    if isinstance(change.record, CompanyRecord):
                        yield pb.WatchChangesResponse(
                            position=change.position, company=company_message(change.record)
                        )
                    else:
                        yield pb.WatchChangesResponse(
                            position=change.position,
                            establishment=establishment_message(change.record),
                        )
                    position = change.position
                if len(changes) == FEED_BATCH:
                    continue
                if not request.follow:
                    return
                await changed.wait(self.poll_seconds)
