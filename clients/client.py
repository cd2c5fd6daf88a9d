"""One client over every service of the backbone, synchronous (`Client`) and asyncio
(`AsyncClient`). Failed calls raise the typed exceptions of clients.errors.

    with Client("127.0.0.1:50051") as client:
        establishment = client.get_establishment("10000000900017")
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from interops.audit.v1 import audit_pb2, audit_pb2_grpc
from interops.dsn.v1 import dsn_pb2_grpc
from interops.habilitation.v1 import habilitation_pb2_grpc
from interops.nomenclature.v1 import nomenclature_pb2_grpc
from interops.notify.v1 import notify_pb2, notify_pb2_grpc
from interops.operation.v1 import operation_pb2 as op
from interops.operation.v1 import operation_pb2_grpc
from interops.registry.v1 import registry_pb2 as pb
from interops.registry.v1 import registry_pb2_grpc
from interops.relations.v1 import relations_pb2_grpc
from interops.token.v1 import token_pb2, token_service_pb2, token_service_pb2_grpc
from opentelemetry.instrumentation.grpc import client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel as otel_intercept_channel
from opentelemetry.sdk.trace import TracerProvider

from clients.credentials import (
    CallCredentials,
    SyncCredentialsInterceptor,
    aio_credentials_interceptors,
)
from clients.dsn_calls import DsnCalls
from clients.errors import from_rpc_error
from clients.habilitation_calls import HabilitationCalls
from clients.paging import async_pages, pages
from clients.token_credentials import ISSUE_METHOD, proof_metadata
from token_suite.chain import Signer

DEFAULT_ADDRESS = "127.0.0.1:50051"
UPLOAD_CHUNK = 1024 * 1024
_OPTIONS = [("grpc.max_receive_message_length", 8 * 1024 * 1024)]
T = TypeVar("T")


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


class _with_errors:  # noqa: N801 -- reads as a wrapper at the call site
    """A stub whose unary calls raise clients.errors exceptions (with the client's timeout)."""

    def __init__(self, stub: Any, client: Any) -> None:
        self._stub = stub
        self._client = client

    def __getattr__(self, name: str) -> Callable[[Any], Any]:
        method = getattr(self._stub, name)

        def call(request: Any) -> Any:
            return self._client._unary(method, request)

        return call


def _channel_target(address: str) -> str:
    return address.removeprefix("grpc://")


class Client(DsnCalls, HabilitationCalls):
    """Synchronous client; `credentials` fills the interceptor slot (token chains);
    `tracer_provider` traces its calls and carries the trace context to the node."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        credentials: CallCredentials | None = None,
        tls: grpc.ChannelCredentials | None = None,
        timeout: float | None = 60.0,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        target = _channel_target(address)
        channel = (
            grpc.secure_channel(target, tls, _OPTIONS)
            if tls
            else grpc.insecure_channel(target, _OPTIONS)
        )
        self._raw_channel = channel
        if tracer_provider is not None:  # client spans, and the W3C trace context in metadata
            interceptor = client_interceptor(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
            channel = otel_intercept_channel(channel, interceptor)  # type: ignore[no-untyped-call]
        if credentials is not None:
            channel = grpc.intercept_channel(channel, SyncCredentialsInterceptor(credentials))
        self.timeout = timeout
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)
        self.operations = operation_pb2_grpc.OperationServiceStub(channel)
        self.tokens = token_service_pb2_grpc.TokenServiceStub(channel)
        self.deposits = dsn_pb2_grpc.DepositServiceStub(channel)
        self.deliveries = dsn_pb2_grpc.DeliveryServiceStub(channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(channel)
        self.notify = _with_errors(notify_pb2_grpc.NotificationServiceStub(channel), self)
        self.relations = _with_errors(relations_pb2_grpc.RelationsServiceStub(channel), self)
        # Its stream (ExportHabilitations) is read with `export_habilitations`.
        self.habilitations = _with_errors(
            habilitation_pb2_grpc.HabilitationServiceStub(channel), self
        )
        self.nomenclature = _with_errors(
            nomenclature_pb2_grpc.NomenclatureServiceStub(channel), self
        )
        self.health = health_pb2_grpc.HealthStub(channel)

    def close(self) -> None:
        """Closes the channel."""
        self._raw_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _unary(self, method: Callable[..., T], request: Any, metadata: Any = None) -> T:
        try:
            return method(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _stream(self, method: Callable[..., Any], request: Any) -> Generator[Any, None, None]:
        call = method(request)
        try:
            yield from call
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            # The caller stopped reading: end the stream on the server too. (Traced, the call
            # is the tracing interceptor's generator: closing it drops the call, which cancels.)
            cancel = getattr(call, "cancel", None) or getattr(call, "close", None)
            if cancel is not None:
                cancel()

    def list_audit_records(
        self, request: audit_pb2.ListRecordsRequest
    ) -> Iterator[audit_pb2.AuditRecord]:
        """Every journal record matching the request's filters, page after page."""
        query = audit_pb2.ListRecordsRequest()
        query.CopyFrom(request)
        yield from pages(functools.partial(self._unary, self.audit.ListRecords), query, "records")

    def stream_notifications(
        self, timeout: float | None = None, lease_seconds: int = 0
    ) -> Generator[notify_pb2.Notification, None, None]:
        """The API channel as a stream: each notification of the caller's companies not yet
        acknowledged, until the generator is closed (or `timeout` seconds have passed). Each
        is handed over again when its lease ends unacknowledged: acknowledge it with
        `acknowledge_notifications` once it is safe with you, and deduplicate by id."""
        request = notify_pb2.StreamNotificationsRequest(lease_seconds=lease_seconds)
        method = functools.partial(self.notify._stub.StreamNotifications, timeout=timeout)
        for response in self._stream(method, request):
            yield response.notification

    def acknowledge_notifications(self, ids: Sequence[str]) -> int:
        """The received acknowledgement of notifications handed over on the API channel (100
        ids a call); returns how many were not acknowledged before."""
        acknowledged = 0
        for start in range(0, len(ids), 100):
            request = notify_pb2.AcknowledgeNotificationsRequest(ids=ids[start : start + 100])
            answer = self._unary(self.notify._stub.AcknowledgeNotifications, request)
            acknowledged += answer.acknowledged
        return acknowledged

    def check_health(self, service: str = "") -> bool:
        """True when the node (or one of its services) is serving."""
        answer = self._unary(self.health.Check, health_pb2.HealthCheckRequest(service=service))
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def get_company(self, siren: str) -> pb.Company:
        """The company with this SIREN."""
        return self._unary(self.registry.GetCompany, pb.GetCompanyRequest(siren=siren)).company

    def get_establishment(self, siret: str) -> pb.Establishment:
        """The establishment with this SIRET."""
        request = pb.GetEstablishmentRequest(siret=siret)
        return self._unary(self.registry.GetEstablishment, request).establishment

    def batch_get_establishments(self, sirets: list[str]) -> pb.BatchGetEstablishmentsResponse:
        """Up to 1,000 establishments; unknown SIRETs come back in missing_sirets."""
        request = pb.BatchGetEstablishmentsRequest(sirets=sirets)
        return self._unary(self.registry.BatchGetEstablishments, request)

    def list_establishments(
        self, siren: str, *, active_only: bool = False, page_size: int = 0
    ) -> Iterator[pb.Establishment]:
        """Every establishment of a company, fetching page after page."""
        request = pb.ListEstablishmentsRequest(
            siren=siren, active_only=active_only, page_size=page_size
        )
        call = functools.partial(self._unary, self.registry.ListEstablishments)
        yield from pages(call, request, "establishments")

    def search_companies(self, name_prefix: str, *, page_size: int = 0) -> Iterator[pb.Company]:
        """Every company whose name starts with the prefix, fetching page after page."""
        request = pb.SearchCompaniesRequest(name_prefix=name_prefix, page_size=page_size)
        call = functools.partial(self._unary, self.registry.SearchCompanies)
        yield from pages(call, request, "companies")

    def validate_siret(self, siret: str) -> pb.ValidateSiretResponse:
        """Format, check digit, existence and active state of a SIRET."""
        return self._unary(self.registry.ValidateSiret, pb.ValidateSiretRequest(siret=siret))

    def import_stock(
        self,
        path: Path,
        *,
        kind: pb.StockKind.ValueType = pb.STOCK_KIND_UNSPECIFIED,
        request_id: str = "",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> op.Operation:
        """Uploads a Sirene stock file; returns the import operation (follow it with
        watch_operation)."""
        try:
            response = self.registry.ImportStock(
                upload_requests(path, kind, request_id, on_progress), timeout=None
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return response.operation

    def get_operation(self, name: str) -> op.Operation:
        """The current state of an operation."""
        return self._unary(
            self.operations.GetOperation, op.GetOperationRequest(name=name)
        ).operation

    def watch_operation(self, name: str) -> Iterator[op.Operation]:
        """The operation each time it progresses, until it is done."""
        for response in self._stream(
            self.operations.WatchOperation, op.WatchOperationRequest(name=name)
        ):
            yield response.operation

    def watch_changes(
        self, after_position: int = 0, *, follow: bool = False
    ) -> Generator[pb.WatchChangesResponse, None, None]:
        """Changes of the registry after a position; with follow, new ones as they come.

        Closing the generator ends the stream on the server too."""
        request = pb.WatchChangesRequest(after_position=after_position, follow=follow)
        return self._stream(self.registry.WatchChanges, request)

    def sign_in(
        self,
        siret: str,
        last_name: str,
        first_name: str,
        password: str,
        **terms: Any,
    ) -> token_service_pb2.IssueTokenResponse:
        """A root chain for a declarant; `terms` are IssueTokenRequest fields (profile,
        audience, grants, holder, lifetime_seconds, max_hops, purpose)."""
        terms.setdefault("profile", token_pb2.PROFILE_PORTAL)
        sign_in = token_service_pb2.DeclarantSignIn(
            siret=siret, last_name=last_name, first_name=first_name, password=password
        )
        request = token_service_pb2.IssueTokenRequest(declarant=sign_in, **terms)
        return self._unary(self.tokens.IssueToken, request)

    def issue_organism_token(
        self, signer: Signer, **terms: Any
    ) -> token_service_pb2.IssueTokenResponse:
        """An APPLICATION root chain for the signer's organism, proving possession of its key."""
        terms.setdefault("profile", token_pb2.PROFILE_APPLICATION)
        request = token_service_pb2.IssueTokenRequest(
            organism=token_service_pb2.OrganismSignIn(organism=signer.organism), **terms
        )
        proof = proof_metadata(signer, ISSUE_METHOD, b"")
        return self._unary(self.tokens.IssueToken, request, [proof])

    def delegate_token(self, token: bytes, **terms: Any) -> token_service_pb2.DelegateTokenResponse:
        """A hop appended by the backbone to a portal chain it holds (DelegateTokenRequest
        fields: holder, profile, audience, grants, lifetime_seconds, max_hops, purpose)."""
        request = token_service_pb2.DelegateTokenRequest(token=token, **terms)
        return self._unary(self.tokens.DelegateToken, request)

    def verify_token(self, token: bytes, audience: str) -> token_service_pb2.Principal:
        """The verified principal and its chain of responsibility."""
        request = token_service_pb2.VerifyTokenRequest(token=token, audience=audience)
        return self._unary(self.tokens.VerifyToken, request).principal

    def revoke_token(self, token: bytes, block: int, signer: Signer) -> bytes:
        """Revokes a block the signer signed; returns its revocation id."""
        request = token_service_pb2.RevokeTokenRequest(token=token, block=block)
        proof = proof_metadata(signer, "/interops.token.v1.TokenService/RevokeToken", token)
        return self._unary(self.tokens.RevokeToken, request, [proof]).revocation_id

    def get_directory(self) -> token_pb2.SignedDirectory:
        """The trust directory signed by the backbone's root key."""
        request = token_service_pb2.GetDirectoryRequest()
        return self._unary(self.tokens.GetDirectory, request).directory


class AsyncClient:
    """Asyncio client with the same calls as `Client`, awaited."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        credentials: CallCredentials | None = None,
        tls: grpc.ChannelCredentials | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        target = _channel_target(address)
        interceptors: Any = None
        if credentials is not None:
            interceptors = aio_credentials_interceptors(credentials)
        self.channel = (
            grpc.aio.secure_channel(target, tls, _OPTIONS, interceptors=interceptors)
            if tls
            else grpc.aio.insecure_channel(target, _OPTIONS, interceptors=interceptors)
        )
        self.timeout = timeout
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.operations = operation_pb2_grpc.OperationServiceStub(self.channel)
        self.tokens = token_service_pb2_grpc.TokenServiceStub(self.channel)

    async def close(self) -> None:
        """Closes the channel."""
        await self.channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _unary(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def _stream(self, method: Callable[..., Any], request: Any) -> AsyncIterator[Any]:
        try:
            async for response in method(request):
                yield response
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def get_company(self, siren: str) -> pb.Company:
        """The company with this SIREN."""
        response = await self._unary(self.registry.GetCompany, pb.GetCompanyRequest(siren=siren))
        return response.company  # type: ignore[no-any-return]

    async def get_establishment(self, siret: str) -> pb.Establishment:
        """The establishment with this SIRET."""
        request = pb.GetEstablishmentRequest(siret=siret)
        response = await self._unary(self.registry.GetEstablishment, request)
        return response.establishment  # type: ignore[no-any-return]

    async def batch_get_establishments(
        self, sirets: list[str]
    ) -> pb.BatchGetEstablishmentsResponse:
        """Up to 1,000 establishments; unknown SIRETs come back in missing_sirets."""
        request = pb.BatchGetEstablishmentsRequest(sirets=sirets)
        return await self._unary(self.registry.BatchGetEstablishments, request)  # type: ignore[no-any-return]

    async def validate_siret(self, siret: str) -> pb.ValidateSiretResponse:
        """Format, check digit, existence and active state of a SIRET."""
        request = pb.ValidateSiretRequest(siret=siret)
        return await self._unary(self.registry.ValidateSiret, request)  # type: ignore[no-any-return]

    async def list_establishments(
        self, siren: str, *, active_only: bool = False, page_size: int = 0
    ) -> AsyncIterator[pb.Establishment]:
        """Every establishment of a company, fetching page after page."""
        request = pb.ListEstablishmentsRequest(
            siren=siren, active_only=active_only, page_size=page_size
        )
        call = functools.partial(self._unary, self.registry.ListEstablishments)
        async for establishment in async_pages(call, request, "establishments"):
            yield establishment

    async def search_companies(
        self, name_prefix: str, *, page_size: int = 0
    ) -> AsyncIterator[pb.Company]:
        """Every company whose name starts with the prefix, fetching page after page."""
        request = pb.SearchCompaniesRequest(name_prefix=name_prefix, page_size=page_size)
        call = functools.partial(self._unary, self.registry.SearchCompanies)
        async for company in async_pages(call, request, "companies"):
            yield company

    async def import_stock(
        self,
        path: Path,
        *,
        kind: pb.StockKind.ValueType = pb.STOCK_KIND_UNSPECIFIED,
        request_id: str = "",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> op.Operation:
        """Uploads a Sirene stock file; returns the import operation."""
        # The file is read in the event loop's thread, one 1 MiB chunk per message.
        requests = upload_requests(path, kind, request_id, on_progress)
        try:
            response = await self.registry.ImportStock(requests, timeout=None)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return response.operation

    async def watch_operation(self, name: str) -> AsyncIterator[op.Operation]:
        """The operation each time it progresses, until it is done."""
        request = op.WatchOperationRequest(name=name)
        async for response in self._stream(self.operations.WatchOperation, request):
            yield response.operation

    async def get_operation(self, name: str) -> op.Operation:
        """The current state of an operation."""
        response = await self._unary(
            self.operations.GetOperation, op.GetOperationRequest(name=name)
        )
        return response.operation  # type: ignore[no-any-return]

    def watch_changes(
        self, after_position: int = 0, *, follow: bool = False
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        """Changes of the registry after a position; with follow, new ones as they come."""
        request = pb.WatchChangesRequest(after_position=after_position, follow=follow)
        return self._stream(self.registry.WatchChanges, request)

    async def verify_token(self, token: bytes, audience: str) -> token_service_pb2.Principal:
        """The verified principal and its chain of responsibility."""
        request = token_service_pb2.VerifyTokenRequest(token=token, audience=audience)
        response = await self._unary(self.tokens.VerifyToken, request)
        return response.principal  # type: ignore[no-any-return]

    async def get_directory(self) -> token_pb2.SignedDirectory:
        """The trust directory signed by the backbone's root key."""
        request = token_service_pb2.GetDirectoryRequest()
        response = await self._unary(self.tokens.GetDirectory, request)
        return response.directory  # type: ignore[no-any-return]
