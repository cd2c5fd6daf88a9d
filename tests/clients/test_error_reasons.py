"""Client and server share one definition of error reasons, the ErrorReason enum of the
contracts: every reason the server can put in an ErrorInfo is in it, and both sides read it the
same way (the name without ERROR_REASON_)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from interops.rpc.v1.error_reason_pb2 import (
    ERROR_REASON_INTERNAL,
    ERROR_REASON_REQUEST_ID_REUSED,
    ERROR_REASON_UNSPECIFIED,
    ErrorReason,
)

from clients.errors import REASONS, error_from_status, reason_name, reason_value
from server.rpc import errors

ROOT = Path(__file__).resolve().parents[2]
# Where reasons are raised: the services and interceptors, and the domain and token libraries
# whose refusals the services pass on with their reason (TokenError, HabilitationRefused...).
SOURCES = ("server", "registry", "token_suite")
# Callables whose argument at this position is a reason, besides the ServiceError classes and
# the exceptions named *Error or *Refused, whose first argument is.
REASON_ARGUMENT = {"build_status": 2, "_refuse": 2, "_refused": 1, "BadBulkFile": 0}
SERVICE_ERRORS = {
    cls.__name__ for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.ServiceError)
}  # fmt: skip
UPPER_SNAKE = re.compile(r"[A-Z][A-Z0-9_]*")


def _reason_position(call: ast.Call) -> int | None:
    function = call.func
    name = (
        function.id if isinstance(function, ast.Name)
        else function.attr if isinstance(function, ast.Attribute)
        else ""
    )  # fmt: skip
    if name in REASON_ARGUMENT:
        return REASON_ARGUMENT[name]
    if name in SERVICE_ERRORS or name.endswith(("Error", "Refused")):
        return 0
    return None


def _reason_argument(call: ast.Call) -> ast.expr | None:
    position = _reason_position(call)
    if position is None:
        return None
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == "reason"), None)


def _reasons_in(tree: ast.AST) -> Iterator[ast.expr]:
    """Reason expressions: arguments of error calls, and keys of tables mapping a reason to
    the ServiceError class that tells it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (argument := _reason_argument(node)) is not None:
            yield argument
        if (
            isinstance(node, ast.Dict)
            and node.values
            and all(
                isinstance(value, ast.Name) and value.id in SERVICE_ERRORS for value in node.values
            )
        ):
            yield from (key for key in node.keys if key is not None)


def raised_reasons() -> tuple[set[str], set[str]]:
    """The literal reasons found in the sources, and the patterns of f-string ones."""
    literals: set[str] = set()
    patterns: set[str] = set()
    for path in sorted(p for source in SOURCES for p in (ROOT / source).rglob("*.py")):
        for reason in _reasons_in(ast.parse(path.read_text(), str(path))):
            if isinstance(reason, ast.Constant) and isinstance(reason.value, str):
                if UPPER_SNAKE.fullmatch(reason.value):  # not a message of a plain exception
                    literals.add(reason.value)
            elif isinstance(reason, ast.JoinedStr) and all(  # f"INVALID_{kind}", not a message
                re.fullmatch(r"[A-Z0-9_]*", str(part.value))
                for part in reason.values
                if isinstance(part, ast.Constant)
            ):
                patterns.add(
                    "".join(
                        re.escape(str(part.value))
                        if isinstance(part, ast.Constant)
                        else "[A-Z0-9_]+"
                        for part in reason.values
                    )
                )
    return literals, patterns


def test_every_reason_the_server_raises_is_in_the_enum() -> None:
    literals, patterns = raised_reasons()
    assert len(literals) >= 90, "the scan no longer finds the reasons: fix raised_reasons"
    assert "REQUEST_ID_REUSED" in literals and "UNDECODABLE_REQUEST" in literals
    assert "INVALID_[A-Z0-9_]+" in patterns  # INVALID_SIRET, INVALID_SIREN
    assert sorted(literals - REASONS) == []
    for pattern in patterns:
        assert any(re.fullmatch(pattern, reason) for reason in REASONS), pattern


def test_the_enum_holds_only_wire_reasons() -> None:
    assert all(UPPER_SNAKE.fullmatch(reason) for reason in REASONS)
    assert len(REASONS) == len(ErrorReason.values()) - 1
    assert reason_name(ERROR_REASON_REQUEST_ID_REUSED) == "REQUEST_ID_REUSED"
    assert reason_value("REQUEST_ID_REUSED") == ERROR_REASON_REQUEST_ID_REUSED
    assert reason_value("A_REASON_OF_A_NEWER_NODE") == ERROR_REASON_UNSPECIFIED
    assert reason_value("") == ERROR_REASON_UNSPECIFIED


@pytest.mark.parametrize("reason", [ERROR_REASON_REQUEST_ID_REUSED, "REQUEST_ID_REUSED"])
def test_a_server_error_reads_the_same_on_the_client(reason: errors.Reason) -> None:
    raised = errors.AlreadyExists(reason, "request id r-1 was used for another request")
    assert raised.reason == "REQUEST_ID_REUSED"
    received = error_from_status(raised.code, raised.to_status())
    assert received.reason == "REQUEST_ID_REUSED"
    assert received.reason_code == ERROR_REASON_REQUEST_ID_REUSED
    assert received.domain == errors.DOMAIN


def test_a_status_built_with_an_enum_value_carries_its_name() -> None:
    status = errors.build_status(grpc.StatusCode.INTERNAL, "failed", ERROR_REASON_INTERNAL)
    assert error_from_status(grpc.StatusCode.INTERNAL, status).reason == "INTERNAL"
