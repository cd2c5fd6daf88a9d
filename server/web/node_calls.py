"""The web adapter's one channel to the node: pages and REST calls go through the gRPC services
with the caller's chain and its proof of possession in the metadata, so that validation,
authorization, audit and tracing happen once, in the node; and with the HTTP client's address
under the node's door secret, so that the node's sign-in limits count that client, not the
adapter (server/rpc/client_address.py)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, TypeVar

import grpc
from google.protobuf.message import Message
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace import TracerProvider
from starlette.requests import Request

from clients.errors import from_rpc_error
from server.rpc.client_address import forwarding_metadata
from token_suite.wire import PROOF_METADATA, TOKEN_METADATA

if TYPE_CHECKING:
    from server.web.sessions import Session

M = TypeVar("M", bound=Message)
_OPTIONS = [("grpc.max_receive_message_length", 8 * 1024 * 1024),
            ("grpc.max_send_message_length", 8 * 1024 * 1024)]  # fmt: skip


def call_metadata(token: bytes | None, proof: bytes | None = None) -> list[tuple[str, str | bytes]]:
    """The metadata that carries a chain (and its proof of possession)."""
    entries: list[tuple[str, str | bytes]] = []
    if token:
        entries.append((TOKEN_METADATA, token))
    if proof:
        entries.append((PROOF_METADATA, proof))
    return entries


def client_of(request: Request) -> str:
    """The address of an HTTP request's client, as uvicorn gives it (the TCP peer, or what a
    reverse proxy on loopback names in X-Forwarded-For: uvicorn's forwarded_allow_ips)."""
    return request.client.host if request.client else "unknown"


class NodeCalls:
    """Calls any method of the node by its path ("/package.Service/Method")."""

    def __init__(
        self,
        address: str,
        timeout: float = 30.0,
        tracer_provider: TracerProvider | None = None,
        door_secret: bytes = b"",
    ) -> None:
        self.address = address.removeprefix("grpc://")
        self.timeout = timeout
        self.door_secret = door_secret
        # Client spans, and the trace context carried to the node: one trace per page.
        self._interceptors = (
            aio_client_interceptors(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
            if tracer_provider is not None
            else None
        )
        self._channel: grpc.aio.Channel | None = None

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel, opened on first use (in the event loop that serves the adapter)."""
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, _OPTIONS, interceptors=self._interceptors
            )
        return self._channel

    async def unary(
        self,
        method: str,
        request: Message,
        response: type[M],
        token: bytes | None = None,
        proof: bytes | None = None,
        *,
        client: str = "",
    ) -> M:
        """One unary call (for the HTTP client at `client`); a failure raises the
        clients.errors exception of its status."""
        answer, failure = await self.raw_unary(method, request.SerializeToString(), token, proof,
                                               client)  # fmt: skip
        if failure is not None:
            raise from_rpc_error(failure)
        return response.FromString(answer or b"")

    async def for_session(
        self, session: Session, method: str, request: Message, response: type[M]
    ) -> M:
        """One unary call as a signed-in session: its chain, and a proof by its key."""
        return await self.unary(method, request, response, session.token, session.proof(method))

    def _metadata(
        self, token: bytes | None, proof: bytes | None, client: str
    ) -> list[tuple[str, str | bytes]]:
        return [*call_metadata(token, proof), *forwarding_metadata(self.door_secret, client)]

    async def raw_unary(
        self, method: str, request: bytes, token: bytes | None, proof: bytes | None,
        client: str = "",
    ) -> tuple[bytes | None, grpc.aio.AioRpcError | None]:  # fmt: skip
        """A unary call with serialized messages: (response, None) or (None, the failure)."""
        call = self.channel.unary_unary(method, request_serializer=None,
                                        response_deserializer=None)  # fmt: skip
        try:
            answer: bytes = await call(request, timeout=self.timeout,
                                       metadata=self._metadata(token, proof, client))  # fmt: skip
        except grpc.aio.AioRpcError as error:
            return None, error
        return answer, None

    async def client_stream(
        self, method: str, requests: AsyncIterator[Message], response: type[M], token: bytes,
        proof: bytes | None = None,
    ) -> M:  # fmt: skip
        """A client-streaming call (an upload); a failure raises as `unary` does."""

        async def serialized() -> AsyncIterator[bytes]:
            async for request in requests:
                yield request.SerializeToString()

        answer, failure = await self.raw_client_stream(
            method, serialized(), token, proof, seconds=self.timeout
        )
        if failure is not None:
            raise from_rpc_error(failure)
        return response.FromString(answer or b"")

    async def raw_client_stream(
        self, method: str, requests: AsyncIterator[bytes], token: bytes | None,
        proof: bytes | None, seconds: float | None = None, *, client: str = "",
    ) -> tuple[bytes | None, grpc.aio.AioRpcError | None]:  # fmt: skip
        """A client-streaming call with serialized messages (an upload), given `seconds` in
        all (None: as long as it takes)."""
        call = self.channel.stream_unary(method, request_serializer=None,
                                         response_deserializer=None)  # fmt: skip
        try:
            answer: bytes = await call(requests, timeout=seconds,
                                       metadata=self._metadata(token, proof, client))  # fmt: skip
        except grpc.aio.AioRpcError as error:
            return None, error
        return answer, None

    def raw_server_stream(
        self, method: str, request: bytes, token: bytes | None, proof: bytes | None,
        client: str = "",
    ) -> AsyncIterable[bytes]:  # fmt: skip
        """A server-streaming call with serialized messages; a failure raises AioRpcError
        while iterating."""
        call = self.channel.unary_stream(method, request_serializer=None,
                                         response_deserializer=None)  # fmt: skip
        answers: AsyncIterable[bytes] = call(
            request, timeout=None, metadata=self._metadata(token, proof, client)
        )
        return answers

    async def close(self) -> None:
        """Closes the channel."""
        if self._channel is not None:
            await self._channel.close(None)
