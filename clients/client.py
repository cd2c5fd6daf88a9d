"""One client over every service of the backbone, synchronous (`Client`) and asyncio
(`AsyncClient`), both built from the one call table (clients/call_table.py): the same calls
under the same names and signatures, awaited on `AsyncClient`. Failed calls raise the typed
exceptions of clients.errors.

    with Client("127.0.0.1:50051") as client:
        establishment = client.get_establishment("10000000900017")
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from interops.audit.v1 import audit_pb2_grpc
from interops.dsn.v1 import dsn_pb2_grpc
from interops.habilitation.v1 import habilitation_pb2_grpc
from interops.mandate.v1 import mandate_pb2_grpc
from interops.nomenclature.v1 import nomenclature_pb2_grpc
from interops.notify.v1 import notify_pb2_grpc
from interops.operation.v1 import operation_pb2_grpc
from interops.registry.v1 import registry_pb2_grpc
from interops.relations.v1 import relations_pb2_grpc
from interops.token.v1 import token_service_pb2_grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors, client_interceptor
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel as otel_intercept_channel
from opentelemetry.sdk.trace import TracerProvider

from clients.address import DEFAULT_ADDRESS, channel_target, open_channel
from clients.call_table import CallTable
from clients.calls import AsyncCaller, SyncCaller
from clients.credentials import (
    CallCredentials,
    SyncCredentialsInterceptor,
    aio_credentials_interceptors,
)
from clients.registry_calls import UPLOAD_CHUNK, upload_requests

_OPTIONS = [("grpc.max_receive_message_length", 8 * 1024 * 1024)]
__all__ = ["DEFAULT_ADDRESS", "UPLOAD_CHUNK", "AsyncClient", "Client", "upload_requests"]


class _with_errors:  # noqa: N801 -- reads as a wrapper at the call site
    """A stub whose unary calls raise clients.errors exceptions (with the client's timeout);
    awaited on an AsyncClient."""

    def __init__(self, stub: Any, client: SyncCaller | AsyncCaller) -> None:
        self._stub = stub
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)

        def call(request: Any) -> Any:
            return self._client._unary(method, request)

        return call


class _Stubs:
    """The generated stubs of each service, for calls by their proto names: `registry`,
    `operations`, `tokens`, `deposits`, `deliveries`, `audit` and `health` are the stubs as
    generated; `notify`, `relations`, `habilitations`, `nomenclature` and `mandates` raise the typed
    errors. The snake_case calls of the call table are the usual way."""

    def _attach_stubs(self, channel: Any, client: SyncCaller | AsyncCaller) -> None:
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)
        self.operations = operation_pb2_grpc.OperationServiceStub(channel)
        self.tokens = token_service_pb2_grpc.TokenServiceStub(channel)
        self.deposits = dsn_pb2_grpc.DepositServiceStub(channel)
        self.deliveries = dsn_pb2_grpc.DeliveryServiceStub(channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(channel)
        self.notify = _with_errors(notify_pb2_grpc.NotificationServiceStub(channel), client)
        self.relations = _with_errors(relations_pb2_grpc.RelationsServiceStub(channel), client)
        self.habilitations = _with_errors(
            habilitation_pb2_grpc.HabilitationServiceStub(channel), client
        )
        self.nomenclature = _with_errors(
            nomenclature_pb2_grpc.NomenclatureServiceStub(channel), client
        )
        self.mandates = _with_errors(mandate_pb2_grpc.MandateServiceStub(channel), client)
        self.health = health_pb2_grpc.HealthStub(channel)


class Client(SyncCaller, CallTable, _Stubs):
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
        channel = open_channel(address, tls, _OPTIONS)
        self._raw_channel = channel
        if tracer_provider is not None:  # client spans, and the W3C trace context in metadata
            interceptor = client_interceptor(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
            channel = otel_intercept_channel(channel, interceptor)  # type: ignore[no-untyped-call]
        if credentials is not None:
            channel = grpc.intercept_channel(channel, SyncCredentialsInterceptor(credentials))
        self.timeout = timeout
        self._channel = channel
        self._multicallables = {}
        self._attach_stubs(channel, self)

    def close(self) -> None:
        """Closes the channel."""
        self._raw_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClient(AsyncCaller, CallTable, _Stubs):
    """Asyncio client with the same calls as `Client`, awaited (and the calls that answer item
    after item as async iterators)."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        credentials: CallCredentials | None = None,
        tls: grpc.ChannelCredentials | None = None,
        timeout: float | None = 60.0,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        target = channel_target(address)
        interceptors: list[Any] = []
        if tracer_provider is not None:  # client spans, and the W3C trace context in metadata
            interceptors += aio_client_interceptors(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
        if credentials is not None:
            interceptors += aio_credentials_interceptors(credentials)
        self.channel = (
            grpc.aio.secure_channel(target, tls, _OPTIONS, interceptors=interceptors or None)
            if tls
            else grpc.aio.insecure_channel(target, _OPTIONS, interceptors=interceptors or None)
        )
        self.timeout = timeout
        self._channel = self.channel
        self._multicallables = {}
        self._attach_stubs(self.channel, self)

    async def close(self) -> None:
        """Closes the channel."""
        await self.channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
