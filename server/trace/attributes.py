"""What of a span the node keeps: ids, times, kind, status code, a name without anything that
looks personal, and the attributes of an allowlist (never a name, NIR, e-mail, IBAN...).

Spans come from two places, the node's own tracer (SDK spans) and organisms' OTLP exports
(protobuf spans); both become a StoredSpan here, by the same rules."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans
from opentelemetry.sdk.trace import ReadableSpan

from registry.trace.store import StoredSpan

# Kept when their value has the form of what the node puts there, else dropped: what an
# operator needs to read an exchange and nothing about a person. A SIRET identifies an
# establishment, not a person; a client's address is left out (it can be a person's own).
_ID = r"[0-9a-f]{32}"
_NUMBER = re.compile(r"\d{1,10}")
FORMATS: dict[str, re.Pattern[str]] = {
    key: re.compile(pattern)
    for key, pattern in {
        "rpc.system": r"[a-z_]{1,32}",
        "rpc.service": r"[A-Za-z0-9_.]{1,100}",
        "rpc.method": r"[A-Za-z0-9_]{1,64}",
        "rpc.grpc.status_code": _NUMBER.pattern,
        "server.address": r"[A-Za-z0-9.:\[\]-]{1,100}",
        "server.port": _NUMBER.pattern,
        "net.host.name": r"[A-Za-z0-9.:\[\]-]{1,100}",
        "net.host.port": _NUMBER.pattern,
        "db.system": r"[a-z0-9_]{1,32}",
        "http.request.method": r"[A-Z]{1,10}",
        "http.response.status_code": _NUMBER.pattern,
        "http.route": r"[A-Za-z0-9_./{}-]{1,100}",
        "interops.deposit_id": _ID,
        "interops.delivery_id": _ID + r"\.[A-Z0-9_-]{1,64}",
        "interops.chain_id": r"[0-9a-f]{8,64}",
        "interops.organism": r"[A-Z0-9_-]{1,64}",
        "interops.organisms": r"[A-Z0-9_>-]{1,200}",
        "interops.siret": r"\d{14}",
        "interops.hops": _NUMBER.pattern,
        "interops.subject_kind": r"[a-z_]{1,32}",
        "interops.deliveries": _NUMBER.pattern,
        "interops.return_code": r"[0-9A-Z]{1,8}",
        "interops.nature": r"\d{2}",
    }.items()
}
ALLOWED_KEYS = frozenset(FORMATS)
# Free text (span and service names) is cut to this before anything reads it.
MAX_NAME = 200
# What might be a person in free text: an e-mail address, a NIR (13 or 15 characters, Corsica's
# 2A/2B, spaces, dots or dashes between) or an IBAN (two letters, two digits, then 10 to 30
# letters or digits, spaces or dashes between). The text is at most MAX_NAME long and every
# repetition bounded, so matching costs little whatever it holds.
_PERSONAL = re.compile(
    r"[^\s@]{1,64}@[^\s@]{1,255}|\d(?:[ .-]?[0-9AB]){12,14}|"
    r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){10,30}\b",
    re.IGNORECASE,
)
# What an organism's system may call its spans and itself: identifiers and paths, no spaces
# (a person's name, a sentence about someone, is not kept).
_ORGANISM_NAME = re.compile(r"[A-Za-z0-9_.:/#-]{1,100}")


def scrubbed(text: str, limit: int = MAX_NAME) -> str:
    """Free text (a span's name) cut to `limit`, then with anything that looks personal
    replaced by "…" (compatibility forms folded first: a full-width at sign is an @)."""
    return _PERSONAL.sub("…", unicodedata.normalize("NFKC", text[:limit]))[:limit]


def organism_name(text: str, limit: int = 100) -> str:
    """A span or service name an organism reported, kept only when shaped as an identifier."""
    name = scrubbed(text, limit)
    return name if _ORGANISM_NAME.fullmatch(name) else "…"


def allowed(attributes: Mapping[str, Any] | None) -> dict[str, str | int]:
    """The attributes of the allowlist whose value has the form the node gives it."""
    kept: dict[str, str | int] = {}
    for key, value in (attributes or {}).items():
        form = FORMATS.get(key)
        if form is None or isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = str(value)
        if form.fullmatch(text):
            kept[key] = value if isinstance(value, int) else text
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
                    name=organism_name(span.name), kind=min(max(int(span.kind), 0), 5),
                    service=organism_name(service) if service else reported_by,
                    reported_by=reported_by,
                    start_ns=int(span.start_time_unix_nano),
                    end_ns=max(int(span.end_time_unix_nano), int(span.start_time_unix_nano)),
                    status=min(max(int(span.status.code), 0), 2),
                    attributes=allowed(_mapping(span.attributes)),
                )  # fmt: skip
