"""Bad input is refused by the contracts, before any of our code: every field a caller can send
(in any request message, nested ones included) carries a rule of protovalidate that bounds it —
strings by a pattern (no NUL; the database refuses it) and a length, integers by a range,
enums to their defined values, timestamps to what a date can be. A field added without one
fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator

from buf.validate import validate_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from server.node import SERVICES

_INTEGERS = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_UINT64: "uint64",
}


def _rules(field: FieldDescriptor) -> validate_pb2.FieldRules:
    options = field.GetOptions()
    if options.HasExtension(validate_pb2.field):
        return options.Extensions[validate_pb2.field]
    return validate_pb2.FieldRules()


def _bounded_pattern(pattern: str) -> bool:
    """True when the pattern alone bounds the length (no *, + nor open {n,})."""
    return re.search(r"[*+]|\{\d+,\}", pattern) is None


def _scalar_problem(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> str:
    """What the rules of one value (a field's, or a repeated field's or map's items) lack."""
    if field.type == FieldDescriptor.TYPE_STRING:
        text = rules.string
        if text.WhichOneof("well_known") is not None:
            return ""
        if not text.HasField("pattern"):
            return "no pattern"
        bounded = text.HasField("max_len") or text.HasField("len")
        return "" if bounded or _bounded_pattern(text.pattern) else "no max_len"
    if field.type == FieldDescriptor.TYPE_ENUM:
        return "" if rules.enum.defined_only else "not defined_only"
    if field.type in _INTEGERS:
        number = getattr(rules, _INTEGERS[field.type])
        bounds = ("gt", "gte", "lt", "lte", "const")
        bounded = any(number.HasField(b) for b in bounds) or len(getattr(number, "in")) > 0
        return "" if bounded else "no range"
    timestamp = field.message_type is not None and (
        field.message_type.full_name == "google.protobuf.Timestamp"
    )
    if timestamp and not (rules.timestamp.HasField("gte") and rules.timestamp.HasField("lte")):
        return "no bounds"
    return ""


def _problems(message: Descriptor, seen: set[str]) -> Iterator[str]:
    if message.full_name in seen:
        return
    seen.add(message.full_name)
    for field in message.fields:
        rules = _rules(field)
        name = f"{message.full_name}.{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            for part, part_rules in ((key, rules.map.keys), (value, rules.map.values)):
                if problem := _scalar_problem(part, part_rules):
                    yield f"{name} ({part.name}s): {problem}"
            continue
        if field.is_repeated:
            if not rules.repeated.HasField("max_items"):
                yield f"{name}: no max_items"
            if problem := _scalar_problem(field, rules.repeated.items):
                yield f"{name} (items): {problem}"
        elif problem := _scalar_problem(field, rules):
            yield f"{name}: {problem}"
        if field.message_type is not None and not field.message_type.full_name.startswith(
            "google.protobuf."
        ):
            yield from _problems(field.message_type, seen)


def test_every_field_a_caller_sends_is_bounded_by_the_contract() -> None:
    seen: set[str] = set()
    problems = [
        problem
        for service in SERVICES
        for method in descriptor_pool.Default().FindServiceByName(service).methods
        for problem in _problems(method.input_type, seen)
    ]
    assert not problems, "\n".join(problems)
    assert len(seen) > 60  # the walk did reach the requests
