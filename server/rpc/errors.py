"""Errors a service raises on purpose, each knowing its gRPC code and HTTP status, and their
translation into a google.rpc.Status with ErrorInfo and, for bad input, BadRequest details.

Reasons are the ErrorReason enum of the contracts (interops.rpc.v1), the one list the client SDK
reads too; a reason is given as an enum value or as its wire string (the name without
ERROR_REASON_), which tests/clients/test_error_reasons.py checks is in the enum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from interops.rpc.v1.error_reason_pb2 import ErrorReason

from clients.errors import reason_name

DOMAIN = "interops"
# An ErrorReason value, or its wire string.
Reason: TypeAlias = "ErrorReason.ValueType | str"


def reason_text(reason: Reason) -> str:
    """The wire string of a reason."""
    return reason if isinstance(reason, str) else reason_name(reason)


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path (e.g. "sirets[3]") and what is wrong."""

    field: str
    description: str
    reason: str = ""


class ServiceError(Exception):
    """An expected failure of a call, told to the caller as it is."""

    code = grpc.StatusCode.UNKNOWN
    http_status = 500

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        violations: Sequence[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason_text(reason)
        self.message = message
        self.violations = tuple(violations)
        self.metadata = dict(metadata or {})

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status sent to the caller."""
        return build_status(self.code, self.message, self.reason, self.violations, self.metadata)


class InvalidArgument(ServiceError):
    """The request is malformed; it names the offending fields."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class NotFound(ServiceError):
    """The resource asked for does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    http_status = 404


class AlreadyExists(ServiceError):
    """The resource to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS
    http_status = 409


class FailedPrecondition(ServiceError):
    """The system is not in a state where the call can be done."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 400


class ResourceExhausted(ServiceError):
    """A size or rate limit was exceeded."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429


class Unauthenticated(ServiceError):
    """The caller is not who it must be: no valid token, sign-in or proof."""

    code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class PermissionDenied(ServiceError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED
    http_status = 403


class Unavailable(ServiceError):
    """The node cannot serve now (shutting down); retry elsewhere or later."""

    code = grpc.StatusCode.UNAVAILABLE
    http_status = 503


def build_status(
    code: grpc.StatusCode,
    message: str,
    reason: Reason,
    violations: Sequence[FieldViolation] = (),
    metadata: Mapping[str, str] | None = None,
) -> status_pb2.Status:
    """A google.rpc.Status with ErrorInfo, plus BadRequest when there are field violations."""
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason=reason_text(reason), domain=DOMAIN, metadata=metadata or {}
        )
    )
    details = [info]
    if violations:
        bad_request = any_pb2.Any()
        bad_request.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason
                    )
                    for v in violations
                ]
            )
        )
        details.append(bad_request)
    return status_pb2.Status(code=_CODES[code], message=message, details=details)


_CODES = {code: getattr(code_pb2, code.name) for code in grpc.StatusCode}

# The HTTP status of each gRPC code (google.api's HTTP mapping), for the REST declination.
_HTTP = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500, grpc.StatusCode.UNAUTHENTICATED: 401,
}  # fmt: skip


def http_status_of(code: grpc.StatusCode) -> int:
    """The HTTP status that tells a REST caller what this gRPC code tells a gRPC one."""
    return _HTTP.get(code, 500)
