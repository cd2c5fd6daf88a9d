"""What of a span the node keeps: ids, times, kind, status code, a name without anything that
looks personal, and the attributes of an allowlist (never a name, NIR, e-mail, IBAN...).

Spans come from two places, the node's own tracer (SDK spans) and organisms' OTLP exports
(protobuf spans); both become a StoredSpan here, by the same rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.sdk.trace import ReadableSpan

from registry.trace.store import StoredSpan

# Kept as they are: what an operator needs to read an exchange and nothing about a person.
# SIRET identifies an establishment, not a person; a client's address is left out (it can be
# a person's own connection).
ALLOWED_KEYS = frozenset({
    "rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code",
    "server.address", "server.port", "net.host.name", "net.host.port",
    "db.system", "http.request.method", "http.response.status_code", "http.route",
    "interops.deposit_id", "interops.delivery_id", "interops.chain_id", "interops.organism",
    "interops.organisms", "interops.siret", "interops.hops", "interops.subject_kind",
    "interops.deliveries", "interops.return_code", "interops.nature",
})  # fmt: skip
MAX_VALUE = 200
# What might be a person in free text: an e-mail address, a NIR (13 or 15 digits, spaces
# allowed) or an IBAN (two letters, two digits, then 10 to 30 letters or digits).
_PERSONAL = re.compile(
    r"[^\s@]+@[^\s@]+|\d(?:[ .]?\d){12,}|\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){10,30}\b"
)


def scrubbed(text: str, limit: int = 200) -> str:
    """Free text (a span's name) with anything that looks personal replaced by "…"."""
    return _PERSONAL.sub("…", text)[:limit]


def allowed(attributes: Mapping[str, Any] | None) -> dict[str, str | int | float | bool]:
    """The attributes of the allowlist whose value is a scalar, texts cut, and none that holds
    an e-mail address."""
    kept: dict[str, str | int | float | bool] = {}
    for key, value in (attributes or {}).items():
        if key not in ALLOWED_KEYS or not isinstance(value, str | int | float | bool):
            continue
        if isinstance(value, str) and "@" in value:
            continue
        kept[key] = value[:MAX_VALUE] if isinstance(value, str) else value
    return kept


def of_sdk(span: ReadableSpan, service: str, reported_by: str) -> StoredSpan | None:
    """One of the node's own spans as kept (None without a valid context)."""
    context = span.context
    if context is None or not context.is_valid:
        return None
    parent = span.parent
    return StoredSpan(
        trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}",
        parent_id=f"{parent.span_id:016x}" if parent is not None else "",
        name=scrubbed(span.name), kind=span.kind.value + 1, service=service,
        reported_by=reported_by, start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0, status=span.status.status_code.value,
        attributes=allowed(span.attributes),
    )  # fmt: skip


def _scalar(value: AnyValue) -> str | int | float | bool | None:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "int_value", "double_value", "bool_value"):
        scalar: str | int | float | bool = getattr(value, kind)
        return scalar
    return None


def _mapping(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _scalar(pair.value) for pair in pairs}


def of_otlp(exported: Iterable[ResourceSpans], reported_by: str) -> Iterator[StoredSpan]:
    """The spans of an OTLP export as kept, each marked as reported by the caller's organism;
    those whose ids are not valid are left out."""
    for resource_spans in exported:
        service = str(_mapping(resource_spans.resource.attributes).get("service.name") or "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    continue
                if not any(span.trace_id) or not any(span.span_id):
                    continue
                parent = span.parent_span_id.hex() if len(span.parent_span_id) == 8 else ""
                yield StoredSpan(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(), parent_id=parent,
                    name=scrubbed(span.name), kind=min(max(int(span.kind), 0), 5),
                    service=scrubbed(service, 100) or reported_by, reported_by=reported_by,
                    start_ns=int(span.start_time_unix_nano),
                    end_ns=max(int(span.end_time_unix_nano), int(span.start_time_unix_nano)),
                    status=min(max(int(span.status.code), 0), 2),
                    attributes=allowed(_mapping(span.attributes)),
                )  # fmt: skip
