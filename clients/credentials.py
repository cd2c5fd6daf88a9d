"""The client's slot for credentials: metadata added to every call by a client interceptor.

A `CallCredentials` gives the metadata for a method at call time; the token suite provides one
that attaches a token chain and a per-call proof of possession.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import grpc

Metadata = Sequence[tuple[str, str | bytes]]


class CallCredentials(Protocol):
    """Gives the metadata to attach to a call of `method` ("/package.Service/Method")."""

    def metadata(self, method: str) -> Metadata:
        """The metadata for one call."""
        ...


def _method_name(details: Any) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


class SyncCredentialsInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Adds the credentials' metadata to every call of a synchronous channel."""

    def __init__(self, credentials: CallCredentials) -> None:
        self.credentials = credentials

    def _details(self, details: Any) -> Any:
        extra = list(self.credentials.metadata(_method_name(details)))
        return details._replace(metadata=[*(details.metadata or ()), *extra])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class _AioCredentials:
    def __init__(self, credentials: CallCredentials) -> None:
        self.credentials = credentials

    def _details(self, details: Any) -> Any:
        extra = self.credentials.metadata(_method_name(details))
        return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), *extra))


class _AioUnaryUnary(_AioCredentials, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioUnaryStream(_AioCredentials, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioStreamUnary(_AioCredentials, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _AioStreamStream(_AioCredentials, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def aio_credentials_interceptors(credentials: CallCredentials) -> list[Any]:
    """Interceptors adding the credentials' metadata to every call of an asyncio channel.

    One per kind of call: grpc.aio files an interceptor under the first kind it implements
    only, so a single object implementing all four would see unary calls alone.
    """
    return [kind(credentials) for kind in (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary,
                                           _AioStreamStream)]  # fmt: skip
