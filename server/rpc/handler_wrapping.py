"""The mechanics shared by our server interceptors: wrapping a method handler's behaviour.

A grpc.aio interceptor returns a method handler; ours wrap the request (validation) or the whole
behaviour (error mapping) of every kind of handler the same way. Wrapped handlers are cached per
method, since the handler the next interceptor returns for a method is the same object each time.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeAlias

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"


_aborted_with: contextvars.ContextVar[status_pb2.Status | None] = contextvars.ContextVar(
    "interops_aborted_with", default=None
)


def aborted_with() -> status_pb2.Status | None:
    """The status this call was ended with by `abort`, if it was."""
    return _aborted_with.get()


async def abort(context: Context, status: status_pb2.Status) -> NoReturn:
    """Ends the call with a rich status (google.rpc.Status in grpc-status-details-bin)."""
    _aborted_with.set(status)
    converted = rpc_status.to_status(status)
    await context.abort(converted.code, converted.details, converted.trailing_metadata)
    raise AssertionError("unreachable: abort raises")


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Base of interceptors that wrap behaviours; subclasses implement `wrap`."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(  # type: ignore[override]
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(handler, method)
        self._cache[method] = (handler, wrapped)
        return wrapped

    def wrap(self, handler: Handler, method: str) -> Handler:
        """Returns the handler with its behaviour wrapped."""
        raise NotImplementedError


def rebuild(
    handler: Any,
    behaviour: Callable[..., Any],
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> Handler:
    """A handler of the same kind and serializers as `handler` (or another request
    deserializer), with a new behaviour."""
    factory = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    built: Handler = factory(
        behaviour,
        request_deserializer=request_deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    return built


def behaviour_of(handler: Any) -> Callable[..., Any]:
    """The function that serves the handler's calls, whatever its kind."""
    behaviour: Callable[..., Any] = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    return behaviour


async def iterate(
    behaviour: Callable[..., Any], request: Any, context: Context
) -> AsyncIterator[Any]:
    """Yields the responses of a response-streaming behaviour, written either as an async
    generator or as a coroutine that writes to the context."""
    result = behaviour(request, context)
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        await result
