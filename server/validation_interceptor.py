"""Enforces the input rules declared in the contracts (protovalidate) on every request message.

Bad input ends the call with INVALID_ARGUMENT, an ErrorInfo (reason INVALID_ARGUMENT) and a
BadRequest listing each offending field; the service code never sees an invalid request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import protovalidate
from buf.validate import validate_pb2
from google.protobuf.message import Message

from server.errors import FieldViolation, build_status
from server.handler_wrapping import (
    Context,
    Handler,
    WrappingInterceptor,
    abort,
    behaviour_of,
    iterate,
    rebuild,
)

_validator = protovalidate.Validator()


def field_path(path: validate_pb2.FieldPath) -> str:
    """A violation's field path as text: "sirets[3]", "header.request_id"."""
    parts: list[str] = []
    for element in path.elements:
        part = element.field_name
        subscript = element.WhichOneof("subscript")
        if subscript == "index":
            part += f"[{element.index}]"
        elif subscript is not None:
            part += f"[{getattr(element, subscript)!r}]"
        parts.append(part)
    return ".".join(parts)


def violations_of(message: Message) -> list[FieldViolation]:
    """The contract's rules that the message breaks, as field violations."""
    found = _validator.collect_violations(message)
    result = []
    for violation in found:
        proto = validate_pb2.Violation.FromString(violation.proto.to_binary())
        result.append(
            FieldViolation(
                field=field_path(proto.field), description=proto.message, reason=proto.rule_id
            )
        )
    return result


async def check(message: Message, context: Context) -> None:
    """Aborts the call with INVALID_ARGUMENT when the message breaks the contract's rules."""
    if not isinstance(message, Message):  # a raw-bytes handler has no contract to check
        return
    violations = violations_of(message)
    if violations:
        summary = "; ".join(f"{v.field or 'request'}: {v.description}" for v in violations)
        status = build_status(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {summary}", "INVALID_ARGUMENT",
            violations,
        )  # fmt: skip
        await abort(context, status)


async def _checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    async for request in requests:
        await check(request, context)
        yield request


class ValidationInterceptor(WrappingInterceptor):
    """Validates every request message, streamed ones included, before the service sees it."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        behaviour = behaviour_of(handler)
        # gRPC runs a handler that is not a coroutine or async generator function in a thread,
        # so every wrapper below is one of those.
        if handler.request_streaming and handler.response_streaming:

            async def stream_stream(requests: AsyncIterator[Any], context: Context) -> Any:
                async for response in iterate(behaviour, _checked(requests, context), context):
                    yield response

            return rebuild(handler, stream_stream)
        if handler.request_streaming:

            async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
                return await behaviour(_checked(requests, context), context)

            return rebuild(handler, stream_unary)
        if handler.response_streaming:

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                await check(request, context)
                async for response in iterate(behaviour, request, context):
                    yield response

            return rebuild(handler, unary_stream)

        async def unary(request: Any, context: Context) -> Any:
            await check(request, context)
            return await behaviour(request, context)

        return rebuild(handler, unary)
