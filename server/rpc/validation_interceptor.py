"""Enforces the input rules declared in the contracts (protovalidate) on every request message.

Bad input ends the call with INVALID_ARGUMENT, an ErrorInfo (reason INVALID_ARGUMENT) and a
BadRequest listing each offending field; the service code never sees an invalid request.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import protovalidate
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from server.rpc.errors import FieldViolation, build_status
from server.rpc.handler_wrapping import (
    Context,
    Handler,
    WrappingInterceptor,
    abort,
    behaviour_of,
    iterate,
    rebuild,
)

_validator = protovalidate.Validator()
log = logging.getLogger("interops.validation")


@dataclass(frozen=True)
class Undecodable:
    """A request message whose bytes did not parse: handed on in place of the message so that
    the call ends with INVALID_ARGUMENT here (grpc would answer INTERNAL and log a traceback)."""

    size: int
    error: str


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The deserializer, returning Undecodable instead of raising."""
    if deserializer is None:
        return None
    parse = deserializer

    def deserialize(raw: bytes) -> Any:
        try:
            return parse(raw)
        except Exception as error:
            return Undecodable(len(raw), type(error).__name__)

    return deserialize


class _Warnings:
    """At most one log line per `period` seconds for one kind of event, with the count of the
    lines it held back: anyone can send garbage, nobody may flood the log with it."""

    def __init__(self, period: float = 10.0) -> None:
        self.period = period
        self.last = -period
        self.held = 0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < self.period:
            self.held += 1
            return
        held, self.held, self.last = self.held, 0, now
        suffix = f" ({held} more since the last line)" if held else ""
        log.warning(message + suffix, *args)


_undecodable = _Warnings()


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


@functools.cache
def _timestamp_fields(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, ...], ...]:
    """Paths to the singular Timestamp fields of a message type (nested ones included)."""
    found: list[tuple[FieldDescriptor, ...]] = []

    def walk(message: Descriptor, path: tuple[FieldDescriptor, ...], depth: int) -> None:
        for field in message.fields:
            if field.message_type is None or field.is_repeated or depth > 8:
                continue
            if field.message_type.full_name == Timestamp.DESCRIPTOR.full_name:
                found.append((*path, field))
            elif not field.message_type.full_name.startswith("google.protobuf."):
                walk(field.message_type, (*path, field), depth + 1)

    walk(descriptor, (), 0)
    return tuple(found)


def _invalid_timestamps(message: Message) -> list[FieldViolation]:
    """Timestamps whose nanos are out of [0, 10^9) (protovalidate's rules do not see them)."""
    result = []
    for path in _timestamp_fields(message.DESCRIPTOR):
        value: Message | None = message
        for field in path:
            if value is None or not value.HasField(field.name):
                value = None
                break
            value = getattr(value, field.name)
        if value is not None and not 0 <= getattr(value, "nanos", 0) < 1_000_000_000:
            name = ".".join(f.name for f in path)
            result.append(
                FieldViolation(name, "nanos must be in [0, 999999999]", "timestamp.nanos")
            )
    return result


async def check(message: Message, context: Context, method: str = "") -> None:
    """Aborts the call with INVALID_ARGUMENT when the message breaks the contract's rules."""
    if isinstance(message, Undecodable):
        _undecodable.warn("undecodable request to %s (%d bytes, %s) from %s",
                          method, message.size, message.error, context.peer())  # fmt: skip
        status = build_status(
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid request: the message does not decode as the method's request type",
            "UNDECODABLE_REQUEST",
        )
        await abort(context, status)
    if not isinstance(message, Message):  # a raw-bytes handler has no contract to check
        return
    violations = violations_of(message) + _invalid_timestamps(message)
    if violations:
        summary = "; ".join(f"{v.field or 'request'}: {v.description}" for v in violations)
        status = build_status(
            grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {summary}", "INVALID_ARGUMENT",
            violations,
        )  # fmt: skip
        await abort(context, status)


async def _checked(
    requests: AsyncIterator[Any], context: Context, method: str
) -> AsyncIterator[Any]:
    async for request in requests:
        await check(request, context, method)
        yield request


class ValidationInterceptor(WrappingInterceptor):
    """Validates every request message, streamed ones included, before the service sees it."""

    def wrap(self, handler: Handler, method: str) -> Handler:
        behaviour = behaviour_of(handler)
        deserializer = tolerant(handler.request_deserializer)
        # gRPC runs a handler that is not a coroutine or async generator function in a thread,
        # so every wrapper below is one of those.
        if handler.request_streaming and handler.response_streaming:

            async def stream_stream(requests: AsyncIterator[Any], context: Context) -> Any:
                async for response in iterate(
                    behaviour, _checked(requests, context, method), context
                ):
                    yield response

            return rebuild(handler, stream_stream, deserializer)
        if handler.request_streaming:

            async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
                return await behaviour(_checked(requests, context, method), context)

            return rebuild(handler, stream_unary, deserializer)
        if handler.response_streaming:

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                await check(request, context, method)
                async for response in iterate(behaviour, request, context):
                    yield response

            return rebuild(handler, unary_stream, deserializer)

        async def unary(request: Any, context: Context) -> Any:
            await check(request, context, method)
            return await behaviour(request, context)

        return rebuild(handler, unary, deserializer)
