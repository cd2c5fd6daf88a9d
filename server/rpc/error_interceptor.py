"""Maps what a service raises to a rich google.rpc.Status.

A ServiceError is told to the caller as it is. Anything else is a bug or an outage: the caller
gets INTERNAL with the trace id and nothing of the exception, and the log gets the whole story
with the same trace id, so an operator can find it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from interops.rpc.v1.error_reason_pb2 import (
    ERROR_REASON_DATABASE_UNAVAILABLE,
    ERROR_REASON_INTERNAL,
    ERROR_REASON_UNIMPLEMENTED,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from server.rpc.errors import ServiceError, build_status
from server.rpc.handler_wrapping import (
    Context,
    Handler,
    WrappingInterceptor,
    abort,
    behaviour_of,
    iterate,
    rebuild,
)
from server.rpc.telemetry import current_trace_id

log = logging.getLogger("interops.errors")


async def fail(error: Exception, method: str, context: Context) -> None:
    """Ends the call with the status for `error`: its own if a ServiceError, else INTERNAL
    with the trace id (and the whole story in the log)."""
    if isinstance(error, ServiceError):
        await abort(context, error.to_status())
    if _database_unreachable(error):
        # The database restarted or is down: SQLAlchemy dropped the pool's connections, so the
        # same call sent again gets a fresh one. Whether this one's writes were applied is not
        # known when the connection broke during a commit: send it again with its request id.
        trace_id = current_trace_id()
        log.warning(
            "%s: the database is unreachable (%s; trace %s)", method,
            type(getattr(error, "orig", None) or error).__name__, trace_id,
            extra={"trace_id": trace_id, "rpc_method": method},
        )  # fmt: skip
        await abort(context, build_status(
            grpc.StatusCode.UNAVAILABLE,
            "the database is unreachable for now: send the call again (with the same request "
            "id: it may have been applied)", ERROR_REASON_DATABASE_UNAVAILABLE,
        ))  # fmt: skip
    if isinstance(error, NotImplementedError):  # a generated servicer's default method
        status = build_status(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{method} is not implemented",
            ERROR_REASON_UNIMPLEMENTED,
        )
        await abort(context, status)
    trace_id = current_trace_id()
    log.error(
        "unexpected failure in %s (trace %s)", method, trace_id, exc_info=error,
        extra={"trace_id": trace_id, "rpc_method": method},
    )  # fmt: skip
    status = build_status(
        grpc.StatusCode.INTERNAL,
        f"internal error; give this trace id to the operator: {trace_id}",
        ERROR_REASON_INTERNAL,
        metadata={"trace_id": trace_id},
    )
    await abort(context, status)


def _database_unreachable(error: Exception) -> bool:
    """A lost database connection (cut by a restart), or none to be had (the database down:
    the failure comes while connecting, before any statement)."""
    if not isinstance(error, DBAPIError):
        return False
    return error.connection_invalidated or (
        isinstance(error, OperationalError) and error.statement is None
    )


def passes_through(error: Exception) -> bool:
    """True for an abort, whose status is already sent."""
    # An abort already sent its status. (A cancellation, the caller leaving, is a BaseException
    # and is not caught at all.)
    return isinstance(error, grpc.aio.AbortError)


class ErrorInterceptor(WrappingInterceptor):
    """Turns exceptions of every handler kind into rich statuses."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        behaviour: Callable[..., Any] = behaviour_of(handler)
        if handler.response_streaming:

            async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
                try:
                    async for response in iterate(behaviour, request, context):
                        yield response
                except Exception as error:
                    if passes_through(error):
                        raise
                    await fail(error, method, context)

            return rebuild(handler, streaming)

        async def unary(request: Any, context: Context) -> Any:
            try:
                return await behaviour(request, context)
            except Exception as error:
                if passes_through(error):
                    raise
                await fail(error, method, context)

        return rebuild(handler, unary)
