"""The client's slot for credentials: metadata added to every call by a client interceptor.

A `CallCredentials` gives the metadata for a method at call time; the token suite provides one
that attaches a token chain and a per-call proof of possession.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import grpc

Metadata = Sequence[tuple[str, str | bytes]]


class CallCredentials(Protocol):
    """Gives the metadata to attach to a call of `method` ("/package.Service/Method")."""

    def metadata(self, method: str) -> Metadata:
        """The metadata for one call."""
        ...


def _with_metadata(details: Any, credentials: CallCredentials) -> Any:
    extra = list(credentials.metadata(details.method))
    return details._replace(metadata=[*(details.metadata or ()), *extra])


class SyncCredentialsInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds the credentials' metadata to every call of a synchronous channel."""

    def __init__(self, credentials: CallCredentials) -> None:
        self.credentials = credentials

    def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_with_metadata(details, self.credentials), request)

    intercept_unary_unary = _call
    intercept_unary_stream = _call
    intercept_stream_unary = _call
    intercept_stream_stream = _call


def aio_interceptors(credentials: CallCredentials) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding the credentials' metadata to every call of an asyncio channel."""

    class _Base:
        async def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
            method = details.method
            method = method.decode() if isinstance(method, bytes) else method
            details = details._replace(
                metadata=grpc.aio.Metadata(*(details.metadata or ()), *credentials.metadata(method))
            )
            return await continuation(details, request)

    class UnaryUnary(_Base, grpc.aio.UnaryUnaryClientInterceptor):
        async def intercept_unary_unary(self, c: Any, d: Any, r: Any) -> Any:
            return await self._call(c, d, r)

    class UnaryStream(_Base, grpc.aio.UnaryStreamClientInterceptor):
        async def intercept_unary_stream(self, c: Any, d: Any, r: Any) -> Any:
            return await self._call(c, d, r)

    class StreamUnary(_Base, grpc.aio.StreamUnaryClientInterceptor):
        async def intercept_stream_unary(self, c: Any, d: Any, r: Any) -> Any:
            return await self._call(c, d, r)

    class StreamStream(_Base, grpc.aio.StreamStreamClientInterceptor):
        async def intercept_stream_stream(self, c: Any, d: Any, r: Any) -> Any:
            return await self._call(c, d, r)

    return [UnaryUnary(), UnaryStream(), StreamUnary(), StreamStream()]
