"""interops.mandate.v1.MandateService: SEPA direct debit mandates, entered once by a company and
shared by every creditor organism.

Two kinds of callers, one right each:
- mandate.manage (a declarant habilitated for the declarative service MANDATS-SEPA, or an
  explicit grant): the mandates of debtors in its perimeter. A SIRET debtor must be in it; a
  SIREN debtor (the company as a whole) when the perimeter holds the company, or its head
  office as the registry knows it. Another debtor's mandate is NOT_IN_YOUR_PERIMETER, and a key
  outside it answers MANDATE_NOT_FOUND as an unknown one would, so that nobody learns which
  references another company has.
- mandate.read (a creditor organism, the chain's subject "organism:CODE"): exactly the mandates
  given to it, and its own extractions.

An IBAN never goes to a log, a span or an error message (the audit journal notes the mandate's
creditor and reference only).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import grpc
from interops.mandate.v1 import mandate_pb2 as pb
from interops.mandate.v1 import mandate_pb2_grpc

from registry.kernel.blob_store import BlobStore
from registry.kernel.clock import timestamp
from registry.kernel.rights import MANDATE_MANAGE
from registry.kernel.sealing import open_sealed
from registry.letters.store import LetterRefused, recipient_of
from registry.mandate.pdf import render
from registry.mandate.store import MandateRecord, MandateRefused, MandateStore, NewMandate
from registry.operation.store import OperationRecord, OperationState, OperationStore
from registry.rcd.records import CompanyRecord
from registry.rcd.store import RcdStore
from server.audit.journal import note
from server.mandate.extractions import (
    EXTRACT_KIND,
    RETENTION_DAYS,
    MandateExtractions,
    file_name,
)
from server.operation.service import operation_message
from server.rpc import page_tokens
from server.rpc.auth_interceptor import current_principal
from server.rpc.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    build_status,
)
from server.rpc.handler_wrapping import Context
from token_suite.grants import Scope

log = logging.getLogger("interops.mandate")
P = ParamSpec("P")
T = TypeVar("T")

_BAD_INPUT = {"BAD_IBAN", "UNKNOWN_BANK", "BAD_BIC", "BAD_CREDITOR_IDENTIFIER",
              "BAD_SIGNATURE_DATE", "UNKNOWN_CREDITOR",
              "MANDATE_REFERENCE_NOT_DEBTORS", "IBAN_NOT_SEPA", "BIC_COUNTRY_MISMATCH"}  # fmt: skip
_BAD_STATE = {"MANDATE_NOT_ACKNOWLEDGED", "MANDATE_REVOKED", "MANDATE_LAPSED"}


def _error(refused: MandateRefused) -> ServiceError:
    """The contract's error for a refusal of the store."""
    if refused.reason in _BAD_INPUT:
        field = refused.field or "request"
        return InvalidArgument(refused.reason, str(refused),
                               violations=[FieldViolation(field, str(refused))])  # fmt: skip
    if refused.reason in _BAD_STATE:
        return FailedPrecondition(refused.reason, str(refused))
    if refused.reason in ("MANDATE_REFERENCE_TAKEN", "REQUEST_ID_REUSED"):
        return AlreadyExists(refused.reason, str(refused))
    return InvalidArgument(refused.reason, str(refused))


async def _ruled(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """The store's call in a thread, its refusal as the contract's error."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except MandateRefused as refused:
        raise _error(refused) from None


def mandate_message(record: MandateRecord, creditor_identifier: str = "") -> pb.Mandate:
    """The Mandate message of a stored mandate."""
    return pb.Mandate(
        creditor=record.creditor,
        creditor_identifier=creditor_identifier,
        reference=record.reference,
        debtor=record.debtor,
        iban=record.iban,
        bic=record.bic,
        scheme=pb.Scheme.ValueType(record.scheme),
        signed_on=record.signed_on,
        state=pb.MandateState.ValueType(record.state),
        create_time=timestamp(record.created_at),
        acknowledge_time=timestamp(record.acknowledged_at),
        revoke_time=timestamp(record.revoked_at),
        uses=record.uses,
        last_declaration=record.last_declaration,
        lapsed=record.lapsed(),
    )


def caller_creditor() -> str:
    """The calling organism's code; NOT_AN_ORGANISM for any other chain."""
    kind, _, code = current_principal().subject.partition(":")
    if kind != "organism" or not code:
        raise PermissionDenied("NOT_AN_ORGANISM", "this is for creditor organisms' systems")
    return code


class MandateService(mandate_pb2_grpc.MandateServiceServicer):
    """Mandates from the store, within the caller's perimeter."""

    def __init__(
        self,
        store: MandateStore,
        rcd: RcdStore,
        operations: OperationStore,
        blobs: BlobStore,
        data_key: bytes,
    ) -> None:
        self.store = store
        self.rcd = rcd
        self.operations = operations
        self.blobs = blobs
        self.data_key = data_key
        self.extractions = MandateExtractions(store, operations, blobs, data_key)

    # -- the debtor's side (mandate.manage) --------------------------------------------------

    async def _covers(self, debtor: str) -> bool:
        """Whether the caller's mandate.manage perimeter holds the debtor."""
        scope = current_principal().grants.get(MANDATE_MANAGE, Scope())
        if len(debtor) == 14:
            return scope.includes_siret(debtor)
        if scope.everything or debtor in scope.sirens:
            return True
        if not any(siret[:9] == debtor for siret in scope.sirets):
            return False
        company = await asyncio.to_thread(self.rcd.get_company, debtor)
        return company is not None and f"{debtor}{company.head_office_nic}" in scope.sirets

    async def _check_debtor(self, debtor: str) -> None:
        if not await self._covers(debtor):
            raise PermissionDenied("NOT_IN_YOUR_PERIMETER", f"{debtor} is not in your perimeter")

    async def _managed(self, key: pb.MandateKey) -> MandateRecord:
        """The mandate of the key, when its debtor is in the caller's perimeter."""
        note(resource=f"mandate:{key.creditor}/{key.reference}")
        found = await asyncio.to_thread(self.store.get, key.creditor, key.reference)
        if found is None or not await self._covers(found.debtor):
            raise NotFound("MANDATE_NOT_FOUND", f"no mandate {key.reference} of {key.creditor}")
        return found

    async def _message(self, record: MandateRecord) -> pb.Mandate:
        creditor = await asyncio.to_thread(self.store.creditor, record.creditor)
        return mandate_message(record, creditor.identifier if creditor else "")

    async def CreateMandate(
        self, request: pb.CreateMandateRequest, context: Context
    ) -> pb.CreateMandateResponse:
        await self._check_debtor(request.debtor)
        request_key = (
            f"{current_principal().subject}:{request.request_id}" if request.request_id else ""
        )
        new = NewMandate(request.debtor, request.creditor, request.reference, request.iban,
                         request.bic, request.scheme, request.signed_on)  # fmt: skip
        record, repeated = await _ruled(self.store.create, new, request_key)
        if repeated and not await self._covers(record.debtor):
            # The earlier mandate's debtor left the caller's perimeter: not told apart.
            raise NotFound("MANDATE_NOT_FOUND", f"no mandate {request.reference} of "
                           f"{request.creditor}")  # fmt: skip
        note(resource=f"mandate:{record.creditor}/{record.reference}")
        if not repeated:
            log.info("mandate %s of %s entered for %s", record.reference, record.creditor,
                     record.debtor)  # fmt: skip
        return pb.CreateMandateResponse(
            mandate=await self._message(record), repeated_request=bool(repeated)
        )

    async def AcknowledgeMandate(
        self, request: pb.AcknowledgeMandateRequest, context: Context
    ) -> pb.AcknowledgeMandateResponse:
        found = await self._managed(request.key)
        record = await _ruled(self.store.acknowledge, found)
        return pb.AcknowledgeMandateResponse(mandate=await self._message(record))

    async def RevokeMandate(
        self, request: pb.RevokeMandateRequest, context: Context
    ) -> pb.RevokeMandateResponse:
        found = await self._managed(request.key)
        record = await _ruled(self.store.revoke, found)
        if found.state != record.state:
            log.info("mandate %s of %s revoked", record.reference, record.creditor)
        return pb.RevokeMandateResponse(mandate=await self._message(record))

    async def UseMandate(
        self, request: pb.UseMandateRequest, context: Context
    ) -> pb.UseMandateResponse:
        found = await self._managed(request.key)
        record, repeated = await _ruled(self.store.use, found, request.declaration)
        return pb.UseMandateResponse(
            mandate=await self._message(record), repeated_request=bool(repeated)
        )

    async def GetMandate(
        self, request: pb.GetMandateRequest, context: Context
    ) -> pb.GetMandateResponse:
        return pb.GetMandateResponse(mandate=await self._message(await self._managed(request.key)))

    async def SearchMandates(
        self, request: pb.SearchMandatesRequest, context: Context
    ) -> pb.SearchMandatesResponse:
        await self._check_debtor(request.debtor)
        note(resource=f"debtor:{request.debtor}")
        query = ("debtor", request.debtor, request.creditor, request.reference, request.state)
        found, token = await self._page(
            query, request.page_size, request.page_token, debtor=request.debtor,
            creditor=request.creditor, reference=request.reference, state=request.state,
        )  # fmt: skip
        # A company's search, by a perimeter holding its head office but not all of it, shows
        # the company's own mandates and its establishments' within the perimeter only (a page
        # may then be shorter than asked).
        scope = current_principal().grants.get(MANDATE_MANAGE, Scope())
        shown = [m for m in found if len(m.debtor) == 9 or scope.includes_siret(m.debtor)]
        return pb.SearchMandatesResponse(mandates=shown, next_page_token=token)

    async def _page(
        self, query: tuple[object, ...], size: int, token: str, **filters: Any
    ) -> tuple[list[pb.Mandate], str]:
        after = page_tokens.decode(token, query, 2)
        size = page_tokens.page_size(size)
        search = functools.partial(self.store.search, after=(after[0], after[1]) if after else None,
                                   limit=size + 1, **filters)  # fmt: skip
        records = await asyncio.to_thread(search)
        records, next_token = page_tokens.cut(
            records, size, query, lambda record: [record.creditor, record.reference]
        )
        identifiers = {c.code: c.identifier for c in await asyncio.to_thread(self.store.creditors)}
        return [mandate_message(r, identifiers.get(r.creditor, "")) for r in records], next_token

    async def PrintMandate(
        self, request: pb.PrintMandateRequest, context: Context
    ) -> pb.PrintMandateResponse:
        found = await self._managed(request.key)
        creditor = await asyncio.to_thread(self.store.creditor, found.creditor)
        assert creditor is not None  # a mandate is entered only for a registered creditor
        company = await asyncio.to_thread(self.rcd.get_company, found.debtor[:9])
        pdf = await asyncio.to_thread(
            render, found, creditor, company.name if company else "", datetime.now(UTC).date(),
            await asyncio.to_thread(self._debtor_address, found.debtor, company),
        )  # fmt: skip
        return pb.PrintMandateResponse(pdf=pdf)

    def _debtor_address(self, debtor: str, company: CompanyRecord | None) -> list[str]:
        """The debtor establishment's postal address in the RCD (a company's: its head
        office's), without the name lines; none when the RCD has no usable one."""
        siret = debtor if len(debtor) == 14 else (
            f"{debtor}{company.head_office_nic}" if company and company.head_office_nic else ""
        )  # fmt: skip
        establishment = self.rcd.get_establishments([siret]).get(siret) if siret else None
        if establishment is None:
            return []
        try:
            recipient = recipient_of(company, establishment)
        except LetterRefused:
            return []
        names = {company.name.strip() if company else "", establishment.name.strip()}
        return [line for line in recipient.address_lines() if line not in names]

    # -- the creditor's side (mandate.read) --------------------------------------------------

    async def GetCreditorMandate(
        self, request: pb.GetCreditorMandateRequest, context: Context
    ) -> pb.GetCreditorMandateResponse:
        creditor = caller_creditor()
        note(resource=f"mandate:{creditor}/{request.reference}")
        found = await asyncio.to_thread(self.store.get, creditor, request.reference, given=True)
        if found is None:
            raise NotFound("MANDATE_NOT_FOUND", f"no mandate {request.reference} of {creditor}")
        return pb.GetCreditorMandateResponse(mandate=await self._message(found))

    async def SearchCreditorMandates(
        self, request: pb.SearchCreditorMandatesRequest, context: Context
    ) -> pb.SearchCreditorMandatesResponse:
        creditor = caller_creditor()
        query = ("creditor", creditor, request.debtor, request.reference, request.state)
        found, token = await self._page(
            query, request.page_size, request.page_token, debtor=request.debtor,
            creditor=creditor, reference=request.reference, state=request.state, given=True,
        )  # fmt: skip
        return pb.SearchCreditorMandatesResponse(mandates=found, next_page_token=token)

    async def ExtractMandates(
        self, request: pb.ExtractMandatesRequest, context: Context
    ) -> pb.ExtractMandatesResponse:
        creditor = caller_creditor()
        # One extraction at a time per creditor: a request while one runs answers it.
        running = await asyncio.to_thread(self.store.running_extraction, creditor)
        if running is not None and (found := await asyncio.to_thread(
            self.operations.get, running
        )) is not None:  # fmt: skip
            note(resource=f"operation:{found.id}")
            return pb.ExtractMandatesResponse(operation=operation_message(found))
        total = await asyncio.to_thread(self.store.count, creditor)
        request_id = f"{creditor}:{request.request_id}" if request.request_id else ""
        record, created = await asyncio.to_thread(
            self.operations.create, EXTRACT_KIND, "mandates", total, request_id
        )
        if created:
            claimed = await asyncio.to_thread(self.store.claim_extraction, record.id, creditor)
            if claimed != record.id:  # another request of the creditor's started one first
                await asyncio.to_thread(self.operations.fail, record.id, build_status(
                    grpc.StatusCode.ABORTED, "another extraction of the creditor runs",
                    "OPERATION_INTERRUPTED",
                ))  # fmt: skip
                other = await asyncio.to_thread(self.operations.get, claimed)
                assert other is not None
                record = other
            else:
                self.extractions.submit(record.id, creditor)
        note(resource=f"operation:{record.id}")
        return pb.ExtractMandatesResponse(operation=operation_message(record))

    async def _extraction(self, name: str) -> OperationRecord:
        creditor = caller_creditor()
        operation_id = name.removeprefix("operations/")
        owner = await asyncio.to_thread(self.store.extraction_creditor, operation_id)
        record = await asyncio.to_thread(self.operations.get, operation_id)
        if owner != creditor or record is None:  # another creditor's is not told apart
            raise NotFound("OPERATION_NOT_FOUND", f"no extraction {name}")
        note(resource=f"operation:{operation_id}")
        return record

    async def GetExtraction(
        self, request: pb.GetExtractionRequest, context: Context
    ) -> pb.GetExtractionResponse:
        return pb.GetExtractionResponse(
            operation=operation_message(await self._extraction(request.name))
        )

    async def DownloadExtraction(
        self, request: pb.DownloadExtractionRequest, context: Context
    ) -> AsyncIterator[pb.DownloadExtractionResponse]:
        record = await self._extraction(request.name)
        if record.state != OperationState.SUCCEEDED:
            raise FailedPrecondition("EXTRACTION_NOT_DONE", f"{request.name} has no file yet")
        if await asyncio.to_thread(self.store.extraction_purged, record.id):
            raise FailedPrecondition("EXPIRED", f"{request.name}'s file was deleted after "
                                     f"{RETENTION_DAYS} days; extract again")  # fmt: skip
        name = file_name(record.id)
        pieces: Iterator[bytes] = open_sealed(
            self.blobs.read(name), name.rsplit("/", 1)[1], self.data_key
        )
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            for start in range(0, len(piece), 1 << 20):
                yield pb.DownloadExtractionResponse(chunk=piece[start : start + (1 << 20)])
