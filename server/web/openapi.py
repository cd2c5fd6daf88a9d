"""The OpenAPI 3.1 document of the REST declination, made from the contracts' descriptors: one
POST operation per unary RPC, request and response schemas in the protobuf JSON mapping
(lowerCamelCase names, 64-bit integers as strings or numbers, enums by name, bytes in base64,
Timestamp as RFC 3339), errors as google.rpc.Status. Each operation names the right its chain must
grant, as the contract declares it (x-interops-right, and the role of its security requirement),
or needs no chain (public). A chain always travels with its proof of possession (the "proof"
security scheme, the interops-proof header): both are required together.

The contracts' comments describe the operations (summary: the RPC comment's first sentence;
description: the whole comment, then the access it needs), the services (tags), the messages and
their fields. The Python descriptors carry no comments: tools/generate_protos.py writes them to
gen/interops/proto_comments.json, by full name."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.rpc import status_pb2

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_INT64 = {"type": ["string", "integer"], "format": "int64", "pattern": "^-?[0-9]+$"}
for _kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64,
              FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_UINT64,
              FieldDescriptor.TYPE_FIXED64):  # fmt: skip
    _SCALARS[_kind] = _INT64
# Well-known types have a JSON form of their own.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.FieldMask": {"type": "string"},
}


@functools.cache
def comments() -> dict[str, str]:
    """The contracts' comments by full name (a method or field after its parent's), as
    tools/generate_protos.py wrote them next to the generated code."""
    text = (resources.files("interops") / "proto_comments.json").read_text(encoding="utf-8")
    found: dict[str, str] = json.loads(text)
    return found


def summary_of(comment: str) -> str:
    """A comment's first sentence: up to the first full stop followed by a space (or the end);
    the whole first paragraph when it has none."""
    paragraph = comment.split("\n\n", 1)[0]
    found = re.match(r"(.+?[.!?])(?:\s|$)", paragraph, re.DOTALL)
    return (found.group(1) if found else paragraph).replace("\n", " ")


def _described(schema: dict[str, Any], full_name: str) -> dict[str, Any]:
    comment = comments().get(full_name)
    return {**schema, "description": comment} if comment else schema


def _ref(descriptor: Descriptor) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{descriptor.full_name}"}


class _Schemas:
    """Collects the schema of every message reachable from the operations."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            self.schemas[descriptor.full_name] = _WELL_KNOWN[descriptor.full_name]
            return _ref(descriptor)
        if descriptor.full_name not in self.schemas:
            self.schemas[descriptor.full_name] = {}  # placeholder: recursive messages
            properties = {f.json_name: _described(self.field(f), f.full_name)
                          for f in descriptor.fields}  # fmt: skip
            self.schemas[descriptor.full_name] = _described(
                {"type": "object", "properties": properties}, descriptor.full_name
            )
        return _ref(descriptor)

    def value(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            names = [value.name for value in field.enum_type.values]
            return {"oneOf": [{"type": "string", "enum": names}, {"type": "integer"}]}
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.value(message.fields[1])}
        if field.is_repeated:
            return {"type": "array", "items": self.value(field)}
        return self.value(field)


def _upload_parameters(schemas: _Schemas, method: MethodDescriptor) -> list[dict[str, Any]]:
    header = method.input_type.fields_by_name["header"].message_type
    assert header is not None
    return [_described({"name": f.json_name, "in": "query", "required": False,
                        "schema": schemas.field(f)}, f.full_name)
            for f in header.fields]  # fmt: skip


def _access(operation: dict[str, Any], right: str | None) -> str:
    """The operation's right, or that it is public, for tools; returned in a sentence for
    readers."""
    if right is None:
        operation["security"] = []
        return "Public: needs no token chain."
    operation["x-interops-right"] = right
    operation["security"] = [{"chain": [right], "proof": []}]
    return (
        f"Needs a chain granting the {right} right, with a proof by the key its last block names."
    )


def _describe(operation: dict[str, Any], method: MethodDescriptor, access: str) -> None:
    """The summary and description from the RPC's comment, the access sentence last."""
    comment = comments().get(method.full_name, "")
    operation["summary"] = summary_of(comment) if comment else method.name
    operation["description"] = f"{comment}\n\n{access}" if comment else access


def document(
    methods: Iterable[tuple[str, MethodDescriptor, str, str | None]], title: str
) -> dict[str, Any]:
    """The OpenAPI document for (path, method, how it is offered, right) entries, the right
    None for a public method; offered as "unary" (JSON in, JSON out), "upload" (query
    parameters and a raw body in, JSON out) or "stream" (JSON in, NDJSON out)."""
    schemas = _Schemas()
    status = schemas.message(status_pb2.Status.DESCRIPTOR)
    paths: dict[str, Any] = {}
    services: set[str] = set()
    for path, method, kind, right in methods:
        output = schemas.message(method.output_type)
        operation: dict[str, Any] = {
            "operationId": f"{method.containing_service.full_name}.{method.name}",
            "tags": [method.containing_service.full_name],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": schemas.message(method.input_type)}}},
            "responses": {
                "200": {"description": "the response message", "content": {
                    "application/json": {"schema": output}}},
                "default": {"description": "the call failed: a google.rpc.Status", "content": {
                    "application/json": {"schema": status}}},
            },
        }  # fmt: skip
        if kind == "upload":
            operation["parameters"] = _upload_parameters(schemas, method)
            operation["requestBody"] = {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}  # fmt: skip
        elif kind == "stream":
            operation["responses"]["200"] = {
                "description": "one response message a line (NDJSON); a failure after the "
                "first line is a last line {\"error\": <google.rpc.Status>}",
                "content": {"application/x-ndjson": {"schema": output}}}  # fmt: skip
        _describe(operation, method, _access(operation, right))
        paths[path] = {"post": operation}
        services.add(method.containing_service.full_name)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "v1", "description": (
            "The public RPCs of the InterOPS backbone over HTTP: POST the request message as "
            "JSON (protobuf JSON mapping) to /v1/<service>/<method>; the answer is the response "
            "message, or a google.rpc.Status with the HTTP status of its code.")},
        "tags": [_described({"name": name}, name) for name in sorted(services)],
        "paths": paths,
        "components": {
            "schemas": schemas.schemas,
            "securitySchemes": {
                "chain": {
                    "type": "http", "scheme": "bearer",
                    "description": "A token chain (TokenChain v2), base64url. Never enough "
                    "alone: every call sends the proof header too."},
                "proof": {
                    "type": "apiKey", "in": "header", "name": "interops-proof",
                    "description": "A CallProof, base64url, signed for this one call by the "
                    "key that the chain's last block names as holder: over the gRPC path "
                    "(/<service>/<method>, the REST path without /v1), the service as audience, "
                    "the time, a fresh nonce and the SHA-256 of the chain. Without it: "
                    "PROOF_REQUIRED; by another key (a prefix of someone else's chain): "
                    "BAD_PROOF. `interops token proof --token T --holder-key K --method "
                    "/<service>/<method>` prints one."},
            },
        },
        "security": [{"chain": [], "proof": []}],
    }  # fmt: skip
