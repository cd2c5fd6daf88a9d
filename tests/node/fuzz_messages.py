"""Requests for any protobuf message, built from its descriptor alone, so that they serve
messages discovered at run time through server reflection: hypothesis strategies that mix values
the contract's rules (buf.validate) accept with hostile ones, and the known bad requests every
method must refuse cleanly."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from buf.validate import validate_pb2
from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

# Message fields deeper than this stay unset.
MAX_DEPTH = 3
TIMESTAMP = "google.protobuf.Timestamp"
DURATION = "google.protobuf.Duration"

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)
_RANGES = {
    FieldDescriptor.TYPE_INT32: INT32, FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32, FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64, FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32, FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64, FieldDescriptor.TYPE_FIXED64: UINT64,
}  # fmt: skip
_RULES_OF_TYPE = {
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32", FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "sint64", FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_UINT32: "uint32", FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_UINT64: "uint64", FieldDescriptor.TYPE_FIXED64: "fixed64",
}  # fmt: skip

# Strings that broke something somewhere once: NUL (PostgreSQL refuses it in text), lengths past
# an index row (about 2,700 bytes in PostgreSQL), LIKE wildcards, case folding that changes the
# length, invisible and right-to-left characters, numbers past 64 bits, paths, format strings.
HOSTILE_STRINGS = (
    "", " ", "\x00", "1234\x00", "\x00" * 14, "12345678901234\x00", "\x00123456789",
    "00000000000000", "000000000", "99999999999999", "-1", "9223372036854775808", "1e309",
    "NaN", "%", "_", "%_%", "\\", "'", '"', "' OR '1'='1", "é", "É", "İ", "ß", "ﬀ", "e\u0301",
    "\u202e", "\ufeff", "\U0001f600", "\t\r\n", "../../etc/passwd", "operations/" + "0" * 32,
    "operations/" + "f" * 32 + "\x00", "{", "}", "{0}", "{a.b}", "{c[0]}", "{d!x}", "{e:{f}}",
    "{siren:d}", "%s", "%(x)s", "${x}", "{{x}}", "<b>", "a,b;c", "a\nb",
)  # fmt: skip
# Long ones, made when drawn (a strategy's repr shows its values).
LONG_STRINGS = (("a", 65), ("9", 513), ("x", 3000), ("é", 100_000))
HOSTILE_BYTES = (b"", b"\x00", b"\xff" * 3, b"\x00" * 32, b"\xff" * 64, bytes(range(256)) * 4)
_TIMESTAMP_SECONDS = (0, -1, 1, 2**31, 253402300799, 253402300800, -62135596800,
                      -62135596801, 2**62, -(2**62), 2**63 - 1, -(2**63))  # fmt: skip
_NANOS = (0, 1, 999_999_999, 10**9, -1, 2**31 - 1, -(2**31))


def message_class(descriptor: Descriptor) -> type[Message]:
    """The class of the descriptor's messages (its pool's own, made once)."""
    cls: type[Message] = GetMessageClass(descriptor)
    return cls


def is_map(field: FieldDescriptor) -> bool:
    """True for a map<K, V> field (a repeated entry message)."""
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


def real_oneofs(descriptor: Descriptor) -> list[list[FieldDescriptor]]:
    """The fields of each oneof, proto3 `optional`'s synthetic ones left out."""
    groups = []
    for oneof in descriptor.oneofs:
        fields = list(oneof.fields)
        if len(fields) == 1 and oneof.name == f"_{fields[0].name}":
            continue
        groups.append(fields)
    return groups


def rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    """The field's buf.validate rules, if the contract gives it any."""
    options = field.GetOptions()
    if not options.HasExtension(validate_pb2.field):
        return None
    rules: validate_pb2.FieldRules = options.Extensions[validate_pb2.field]
    return rules


def assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    """Sets one field of a message built with `message_class` to a drawn value."""
    target = getattr(message, field.name)
    if is_map(field):
        value_field = _entry(field).fields_by_name["value"]
        for key, item in value.items():
            if value_field.message_type is not None:
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated:
        target.extend(value)
    elif field.message_type is not None:
        target.SetInParent()
        target.MergeFrom(value)
    else:
        setattr(message, field.name, value)


def build(descriptor: Descriptor, values: Sequence[tuple[FieldDescriptor, Any]]) -> Message:
    """A message of the descriptor's type with these field values."""
    message = message_class(descriptor)()
    for field, value in values:
        assign(message, field, value)
    return message


def show(message: Message | bytes, limit: int = 300) -> str:
    """A one-line picture of a request, cut at `limit` characters."""
    if isinstance(message, bytes):
        text = f"raw bytes {message[:limit]!r}"
    else:
        text = text_format.MessageToString(message, as_one_line=True) or "<empty>"
        text = f"{message.DESCRIPTOR.name} {{{text}}}"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


# Hypothesis strategies -------------------------------------------------------------------------

VALID, NEAR, MIXED = "valid", "near", "mixed"


def _oneof_required(fields: list[FieldDescriptor]) -> bool:
    oneof = fields[0].containing_oneof
    options = oneof.GetOptions() if oneof is not None else None
    if options is None or not options.HasExtension(validate_pb2.oneof):
        return False
    return bool(options.Extensions[validate_pb2.oneof].required)


def _in(rule: Any) -> list[Any]:
    return list(getattr(rule, "in"))  # a keyword in Python


def _one_of_words(words: tuple[str, ...]) -> st.SearchStrategy[str]:
    """One of the words (sampled_from would show them all in its repr, which hypothesis makes
    now and then: too long for long lists)."""
    return st.integers(0, len(words) - 1).map(words.__getitem__)


def _setting(field: FieldDescriptor) -> Callable[[Any], list[tuple[FieldDescriptor, Any]]]:
    """Turns a drawn value into the (field, value) pair `build` takes."""
    return lambda value: [(field, value)]


def _entry(field: FieldDescriptor) -> Descriptor:
    entry = field.message_type
    assert entry is not None
    return entry


class Learned:
    """Strings and bytes the node answered with (ids, names, tokens, page tokens), kept to be
    sent back: what reaches past a "not found"."""

    def __init__(self, limit: int = 500) -> None:
        self.limit = limit
        self.strings: list[str] = []
        self.blobs: list[bytes] = []
        self._seen: set[str | bytes] = set()

    def take(self, message: Message) -> None:
        """Keeps the short strings and bytes of a response, nested ones included."""
        for field, value in message.ListFields():
            values = value if field.is_repeated else [value]
            if is_map(field):
                values = list(value.values())
            for item in values:
                if isinstance(item, Message):
                    self.take(item)
                elif isinstance(item, str) and 0 < len(item) <= 600:
                    self._keep(item, self.strings)
                elif isinstance(item, bytes) and 0 < len(item) <= 4096:
                    self._keep(item, self.blobs)

    def _keep(self, item: Any, into: list[Any]) -> None:
        if item not in self._seen and len(into) < self.limit:
            self._seen.add(item)
            into.append(item)

    def string(self, index: int, fits: Callable[[str], bool]) -> str | None:
        """A learned string that fits, chosen by `index`; None when none does."""
        fitting = [s for s in self.strings if fits(s)]
        return fitting[index % len(fitting)] if fitting else None

    def blob(self, index: int) -> bytes:
        """A learned bytes value chosen by `index` (empty when there is none)."""
        return self.blobs[index % len(self.blobs)] if self.blobs else b""


class Strategies:
    """Strategies for the messages of one descriptor pool.

    A message is drawn in one of three modes: VALID, where every field the contract gives
    rules gets a value they accept (so that the call reaches the service's code) and every
    other field anything, hostile values included; NEAR, the same with one rule-bound value in
    four hostile; MIXED, where each field is absent, accepted or hostile. `dictionary` holds
    strings worth trying (existing SIRETs, names), `learned` what the node answered; both go
    where a field's rules accept them."""

    def __init__(self, dictionary: Sequence[str] = (), learned: Learned | None = None) -> None:
        self.dictionary = tuple(dictionary)
        self.learned = learned or Learned()
        self._messages: dict[tuple[str, int, str, str], st.SearchStrategy[Message]] = {}

    def requests(self, descriptor: Descriptor, streaming: bool) -> st.SearchStrategy[list[Message]]:
        """What a call sends: one message, or one to three for a client stream."""
        one = st.one_of(*(self.message(descriptor, 0, mode) for mode in (VALID, NEAR, MIXED)))
        if not streaming:
            return one.map(lambda message: [message])
        # An upload's stream: a header (its oneof's first member), then the other parts.
        first = self.message(descriptor, 0, VALID, "first")
        rest = st.lists(self.message(descriptor, 0, VALID, "rest"), max_size=2)
        upload = st.tuples(first, rest).map(lambda parts: [parts[0], *parts[1]])
        return st.one_of(st.lists(one, min_size=1, max_size=3), upload)

    def message(
        self, descriptor: Descriptor, depth: int, mode: str, members: str = "any"
    ) -> st.SearchStrategy[Message]:
        """Messages of the type; at most one member of each oneof (the first one, or one of
        the others, when `members` says so)."""
        key = (descriptor.full_name, depth, mode, members)
        found = self._messages.get(key)
        if found is None:
            found = st.deferred(lambda: self._build_message(descriptor, depth, mode, members))
            self._messages[key] = found
        return found

    def _build_message(
        self, descriptor: Descriptor, depth: int, mode: str, members: str
    ) -> st.SearchStrategy[Message]:
        if descriptor.full_name in (TIMESTAMP, DURATION):
            return self._time(descriptor, None)
        groups = real_oneofs(descriptor)
        in_oneof = {f.full_name for group in groups for f in group}
        parts: list[st.SearchStrategy[list[tuple[FieldDescriptor, Any]]]] = []
        for field in descriptor.fields:
            if field.full_name in in_oneof:
                continue
            value = self.field(field, depth, mode)
            if value is None:
                continue
            present = value.map(_setting(field))
            rules = rules_of(field)
            bound = field.is_repeated or field.message_type is None  # may draw the default
            if mode != MIXED and rules is not None and (rules.required or bound):
                parts.append(present)
            else:
                parts.append(st.one_of(st.just([]), present))
        for group in groups:
            chosen = group[:1] if members == "first" else group
            chosen = group[1:] if members == "rest" and len(group) > 1 else chosen
            choices = [
                value.map(_setting(field))
                for field in chosen
                if (value := self.field(field, depth, mode)) is not None
            ]
            if members == "any" and (mode == MIXED or not _oneof_required(group)):
                choices.insert(0, st.just([]))
            if choices:
                parts.append(st.one_of(*choices))
        return st.tuples(*parts).map(
            lambda chosen: build(descriptor, [item for part in chosen for item in part])
        )

    def _time(
        self, descriptor: Descriptor, rules: validate_pb2.TimestampRules | None
    ) -> st.SearchStrategy[Message]:
        """Timestamps (and durations): within the rules' bounds when there are rules (nanos
        anything still: the rules do not look at them), else anywhere in 64 bits."""
        cls: Callable[..., Message] = message_class(descriptor)
        nanos = st.one_of(st.sampled_from(_NANOS), st.integers(0, 999_999_999))
        if rules is not None:
            least = rules.gte.seconds if rules.HasField("gte") else -62135596800
            least = rules.gt.seconds + 1 if rules.HasField("gt") else least
            most = rules.lte.seconds - 1 if rules.HasField("lte") else 253402300798
            most = rules.lt.seconds - 1 if rules.HasField("lt") else most
            seconds = st.one_of(st.integers(least, max(least, most)),
                                st.sampled_from([least, max(least, most)]))  # fmt: skip
        else:
            seconds = st.one_of(
                st.sampled_from(_TIMESTAMP_SECONDS), st.integers(0, 4_102_444_800),
                st.integers(*INT64),
            )  # fmt: skip
        return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)

    def field(self, field: FieldDescriptor, depth: int, mode: str) -> st.SearchStrategy[Any] | None:
        """Values of a field (a list for a repeated one, a dict for a map); None for a message
        field too deep to fill."""
        rules = rules_of(field) if mode != MIXED else None
        if is_map(field):
            entry = _entry(field)
            map_rules = rules.map if rules is not None and rules.HasField("map") else None
            keys = self.single(
                entry.fields_by_name["key"], map_rules.keys if map_rules else None, depth, mode
            )
            values = self.single(
                entry.fields_by_name["value"], map_rules.values if map_rules else None,
                depth + 1, mode,
            )  # fmt: skip
            if keys is None or values is None:
                return None
            least = map_rules.min_pairs if map_rules else 0
            most = map_rules.max_pairs if map_rules and map_rules.max_pairs else 3
            return st.dictionaries(keys, values, min_size=least, max_size=max(least, min(most, 3)))
        if field.is_repeated:
            repeated = rules.repeated if rules is not None and rules.HasField("repeated") else None
            item = self.single(field, repeated.items if repeated else None, depth + 1, mode)
            if item is None:
                return None
            if repeated is not None:
                least = repeated.min_items
                most = max(least, min(repeated.max_items or 3, 3))
                unique = repeated.unique and field.message_type is None
                return st.lists(item, min_size=least, max_size=most, unique=unique)
            lists = st.lists(item, max_size=3)
            limit = rules_of(field)
            if mode == MIXED and limit is not None and 0 < limit.repeated.max_items <= 64:
                over = limit.repeated.max_items + 1  # past the contract's limit
                lists = st.one_of(lists, st.lists(item, min_size=over, max_size=over))
            return lists
        return self.single(field, rules, depth, mode)

    def single(
        self,
        field: FieldDescriptor,
        rules: validate_pb2.FieldRules | None,
        depth: int,
        mode: str,
    ) -> st.SearchStrategy[Any] | None:
        """Values of one element of the field: what its rules accept when there are rules
        (now and then hostile in NEAR mode), else anything, hostile values first."""
        if field.message_type is not None:
            if field.message_type.full_name in (TIMESTAMP, DURATION):
                time_rules = rules.timestamp if rules and rules.HasField("timestamp") else None
                return self._time(field.message_type, time_rules)
            if depth >= MAX_DEPTH:
                return None
            return self.message(field.message_type, depth + 1, mode)
        accepted = self._scalar(field, rules)
        if mode == NEAR and rules is not None:
            return st.one_of(accepted, accepted, accepted, self._scalar(field, None))
        return accepted

    def _scalar(
        self, field: FieldDescriptor, rules: validate_pb2.FieldRules | None
    ) -> st.SearchStrategy[Any]:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return self._string(rules)
        if kind == FieldDescriptor.TYPE_BYTES:
            return self._bytes(rules)
        if kind == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if kind == FieldDescriptor.TYPE_ENUM:
            return self._enum(field, rules)
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return st.floats(width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64)
        return self._integer(kind, rules)

    def _learned_string(
        self, fits: Callable[[str], bool], otherwise: st.SearchStrategy[str]
    ) -> st.SearchStrategy[str]:
        def pick(index: int) -> st.SearchStrategy[str]:
            found = self.learned.string(index, fits)
            return otherwise if found is None else st.just(found)

        return st.integers(0, 2**16).flatmap(pick)

    def _hostile_string(self) -> st.SearchStrategy[str]:
        return st.one_of(
            _one_of_words(HOSTILE_STRINGS), st.text(max_size=20),
            st.sampled_from(LONG_STRINGS).map(lambda long: long[0] * long[1]),
            *([_one_of_words(self.dictionary)] if self.dictionary else []),
            self._learned_string(lambda s: True, st.just("")),
        )  # fmt: skip

    def _string(self, rules: validate_pb2.FieldRules | None) -> st.SearchStrategy[str]:
        if rules is None or not rules.HasField("string"):
            return self._hostile_string()
        rule = rules.string
        if rule.HasField("const"):
            return st.just(rule.const)
        if _in(rule):
            return st.sampled_from(_in(rule))
        least = max(rule.min_len, rule.len)
        most = rule.max_len if rule.HasField("max_len") else 10**9
        most = rule.len if rule.HasField("len") else most

        def fits(text: str) -> bool:
            return (
                least <= len(text) <= most and text.startswith(rule.prefix)
                and (not rule.pattern or re.fullmatch(rule.pattern, text) is not None)
            )  # fmt: skip

        if rule.pattern:
            made = st.from_regex(rule.pattern, fullmatch=True).filter(fits)
        elif rule.email:
            made = st.emails().filter(fits)
        else:
            made = st.text(min_size=max(0, least - len(rule.prefix)),
                           max_size=max(0, min(most, least + 40) - len(rule.prefix)))  # fmt: skip
            made = made.map(lambda t: rule.prefix + t)
        choices = [made, self._learned_string(fits, made)]
        known = [word for word in (*self.dictionary, *HOSTILE_STRINGS) if fits(word)]
        if known:
            choices.append(_one_of_words(tuple(known)))
        return st.one_of(*choices)

    def _bytes(self, rules: validate_pb2.FieldRules | None) -> st.SearchStrategy[bytes]:
        learned = st.integers(0, 2**16).map(self.learned.blob)
        if rules is None or not rules.HasField("bytes"):
            hostile = st.integers(0, len(HOSTILE_BYTES) - 1).map(HOSTILE_BYTES.__getitem__)
            return st.one_of(hostile, st.binary(max_size=64), learned)
        rule = rules.bytes
        if rule.HasField("len"):
            return st.binary(min_size=rule.len, max_size=rule.len)
        least = rule.min_len
        most = rule.max_len if rule.HasField("max_len") else 10**9
        fitting = learned.filter(lambda blob: least <= len(blob) <= most)
        return st.one_of(st.binary(min_size=least, max_size=max(least, min(most, 64))), fitting)

    def _enum(
        self, field: FieldDescriptor, rules: validate_pb2.FieldRules | None
    ) -> st.SearchStrategy[int]:
        enum = field.enum_type
        assert enum is not None
        numbers = [value.number for value in enum.values]
        if rules is not None and rules.HasField("enum"):
            rule = rules.enum
            if rule.HasField("const"):
                return st.just(rule.const)
            allowed = _in(rule) or numbers
            if not rule.defined_only and not _in(rule):
                allowed = [*allowed, 999]
            allowed = [n for n in allowed if n not in rule.not_in] or numbers
            return st.sampled_from(allowed)
        if enum.is_closed:
            return st.sampled_from(numbers)
        return st.one_of(st.sampled_from(numbers), st.sampled_from([999, -1, 2**31 - 1]))

    def _integer(self, kind: int, rules: validate_pb2.FieldRules | None) -> st.SearchStrategy[int]:
        low, high = _RANGES[kind]
        name = _RULES_OF_TYPE[kind]
        if rules is None or not rules.HasField(name):  # type: ignore[arg-type]
            edges = [low, high, 0, 1, -1, 2**31 - 1, -(2**31), 2**53 + 1]
            return st.one_of(
                st.sampled_from([e for e in edges if low <= e <= high]), st.integers(low, high)
            )
        rule = getattr(rules, name)
        if rule.HasField("const"):
            return st.just(int(rule.const))
        if _in(rule):
            return st.sampled_from(_in(rule))
        least = rule.gte if rule.HasField("gte") else rule.gt + 1 if rule.HasField("gt") else low
        most = rule.lte if rule.HasField("lte") else rule.lt - 1 if rule.HasField("lt") else high
        excluded = set(rule.not_in)
        values = st.one_of(
            st.sampled_from([n for n in {least, most, least + 1, most - 1} if least <= n <= most]),
            st.integers(least, min(most, least + 100)), st.integers(least, most),
        )  # fmt: skip
        return values.filter(lambda n: n not in excluded) if excluded else values


# Known bad requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BadCase:
    """Every field of some kind set to one bad value; message fields filled so that nested
    fields get it too."""

    name: str
    scalar: Callable[[FieldDescriptor], Any]  # the value, or None to leave the field unset
    timestamp: tuple[int, int] | None = None


def _of_types(types: dict[int, Any]) -> Callable[[FieldDescriptor], Any]:
    return lambda field: types.get(field.type)


LONG = "é" * 100_000
_INTEGERS_MAX = {kind: high for kind, (_, high) in _RANGES.items()}
_INTEGERS_MIN = {kind: low for kind, (low, _) in _RANGES.items() if low < 0}
BAD_CASES = (
    BadCase("every string 1234\\x00", _of_types({FieldDescriptor.TYPE_STRING: "1234\x00"})),
    BadCase("every string 100,000 characters", _of_types({FieldDescriptor.TYPE_STRING: LONG})),
    BadCase("every int64 2**63-1 (every integer at its maximum)", _of_types(_INTEGERS_MAX)),
    BadCase("every integer at its minimum", _of_types(_INTEGERS_MIN)),
    BadCase("every enum 999", lambda f: 999 if f.enum_type and not f.enum_type.is_closed else None),
    BadCase("every bytes field 0xff * 64", _of_types({FieldDescriptor.TYPE_BYTES: b"\xff" * 64})),
    BadCase("every Timestamp seconds=2**62", lambda f: None, timestamp=(2**62, 0)),
    BadCase("every Timestamp seconds=-2**62", lambda f: None, timestamp=(-(2**62), 0)),
    BadCase("every Timestamp nanos=10**9", lambda f: None, timestamp=(0, 10**9)),
)


def _has_kind(descriptor: Descriptor, case: BadCase, depth: int = 0) -> bool:
    """True when the case sets anything in a message of this type."""
    if descriptor.full_name == TIMESTAMP:
        return case.timestamp is not None
    for field in descriptor.fields:
        target = field.message_type
        if is_map(field):
            if any(case.scalar(f) is not None for f in _entry(field).fields):
                return True
        elif target is not None:
            if depth < MAX_DEPTH and _has_kind(target, case, depth + 1):
                return True
        elif case.scalar(field) is not None:
            return True
    return False


def _filled(descriptor: Descriptor, case: BadCase, choice: int, depth: int) -> Message:
    cls: Callable[..., Message] = message_class(descriptor)
    if descriptor.full_name == TIMESTAMP and case.timestamp is not None:
        return cls(seconds=case.timestamp[0], nanos=case.timestamp[1])
    chosen = {group[choice % len(group)].full_name for group in real_oneofs(descriptor)}
    skipped = {f.full_name for group in real_oneofs(descriptor) for f in group} - chosen
    values: list[tuple[FieldDescriptor, Any]] = []
    for field in descriptor.fields:
        if field.full_name in skipped:
            continue
        if is_map(field):
            entry = _entry(field)
            key, item = entry.fields_by_name["key"], entry.fields_by_name["value"]
            bad_key, bad_item = case.scalar(key), case.scalar(item)
            if bad_key is not None or (bad_item is not None and item.message_type is None):
                default_key = key.default_value if bad_key is None else bad_key
                default_item = item.default_value if bad_item is None else bad_item
                if item.message_type is not None:
                    default_item = message_class(item.message_type)()
                values.append((field, {default_key: default_item}))
            continue
        if field.message_type is not None:
            if depth >= MAX_DEPTH or not _has_kind(field.message_type, case, depth + 1):
                continue
            value: Any = _filled(field.message_type, case, choice, depth + 1)
        else:
            value = case.scalar(field)
            if value is None:
                continue
        values.append((field, [value] if field.is_repeated else value))
    return build(descriptor, values)


def bad_requests(descriptor: Descriptor) -> Iterator[tuple[str, Message]]:
    """(case, request) for each known bad case that sets something in this type, one request
    per member of its largest oneof."""
    widest = max((len(group) for group in real_oneofs(descriptor)), default=1)
    seen: set[bytes] = set()
    for case in BAD_CASES:
        if not _has_kind(descriptor, case):
            continue
        for choice in range(widest):
            request = _filled(descriptor, case, choice, 0)
            wire = request.SerializeToString(deterministic=True)
            if wire not in seen:
                seen.add(wire)
                yield case.name, request
