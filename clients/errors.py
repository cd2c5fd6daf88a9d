"""Typed exceptions built from the rich status (google.rpc.Status) of a failed call, and the
reasons they carry: the ErrorReason enum of the contracts (interops.rpc.v1), shared with the
server, whose value names without ERROR_REASON_ are the reasons on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from interops.rpc.v1.error_reason_pb2 import ERROR_REASON_UNSPECIFIED, ErrorReason

_PREFIX = "ERROR_REASON_"


def reason_name(reason: ErrorReason.ValueType) -> str:
    """The reason as ErrorInfo.reason carries it: its enum name without ERROR_REASON_."""
    return ErrorReason.Name(reason).removeprefix(_PREFIX)


def reason_value(name: str) -> ErrorReason.ValueType:
    """The enum value of a reason read on the wire; ERROR_REASON_UNSPECIFIED for an empty one
    or one newer than this client's contracts."""
    try:
        return ErrorReason.Value(_PREFIX + name) if name else ERROR_REASON_UNSPECIFIED
    except ValueError:
        return ERROR_REASON_UNSPECIFIED


# Every reason a failed call may carry.
REASONS = frozenset(reason_name(value) for value in ErrorReason.values() if value)


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, as the server named it."""

    field: str
    description: str


@dataclass
class InteropsError(Exception):
    """A call failed; `reason` (UPPER_SNAKE) says why in a way a program can test."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[FieldViolation] = field(default_factory=list)

    @property
    def reason_code(self) -> ErrorReason.ValueType:
        """`reason` as an ErrorReason value, to compare with the enum's constants."""
        return reason_value(self.reason)

    def __str__(self) -> str:
        text = f"{self.code.name}"
        if self.reason and self.reason != self.code.name:  # INVALID_ARGUMENT's reason is its code
            text += f" {self.reason}"
        # The server's message may start with the reason already: say it once.
        message = self.message
        if self.reason and message.startswith(f"{self.reason}: "):
            message = message[len(self.reason) + 2 :]
        text += f": {message}"
        for violation in self.violations:
            said = f"{violation.field}: {violation.description}"
            if said not in message:  # a message made of the violations: each once
                text += f"\n  {said}"
        return text


class InvalidArgument(InteropsError):
    """The request was malformed; `violations` names the fields."""


class NotFound(InteropsError):
    """What was asked for does not exist."""


class AlreadyExists(InteropsError):
    """What was to be created exists already."""


class PermissionDenied(InteropsError):
    """The caller may not do this."""


class Unauthenticated(InteropsError):
    """The caller's credentials are missing or invalid."""


class FailedPrecondition(InteropsError):
    """The system is not in a state that allows the call."""


class ResourceExhausted(InteropsError):
    """A size or rate limit was exceeded."""


class Unavailable(InteropsError):
    """The node cannot be reached or is shutting down; the call may be retried."""


class Internal(InteropsError):
    """The node failed; `metadata["trace_id"]` identifies the failure for the operator."""


_BY_CODE: dict[grpc.StatusCode, type[InteropsError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.INTERNAL: Internal,
}


def error_from_status(code: grpc.StatusCode, status: status_pb2.Status) -> InteropsError:
    """The typed exception for a google.rpc.Status."""
    error = _BY_CODE.get(code, InteropsError)(code, status.message)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            error.reason, error.domain, error.metadata = (
                info.reason,
                info.domain,
                dict(info.metadata),
            )
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            error.violations = [
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            ]
    return error


def from_rpc_error(error: grpc.RpcError) -> InteropsError:
    """The typed exception for a failed call (sync or asyncio), from its rich status if any."""
    call: grpc.Call = error  # type: ignore[assignment]
    status = None
    try:
        status = rpc_status.from_call(call)
    except ValueError:
        status = None  # a status detail that contradicts the code: fall back to the plain status
    if status is None:
        status = status_pb2.Status(code=call.code().value[0], message=call.details() or "")
    return error_from_status(call.code(), status)
