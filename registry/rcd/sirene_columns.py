"""The columnar fast path of the establishments import: a chunk of StockEtablissement lines
checked and encoded as PostgreSQL COPY text a column at a time (pyarrow), not a line at a time.

It only ever accepts what the Python reader (sirene_stock.establishment_of) accepts, and writes
the same COPY line and row hash for it; every line it is not sure of is left to that reader,
which stays the authority on every rejection and its reason:

- lines that are not "plain": blank, a quote, NUL, CR, tab, backslash or byte order mark
  anywhere, not exactly the header's number of fields, or not valid UTF-8;
- plain lines that fail a vectorised check of the clean case: a SIRET of 14 ASCII digits with a
  Luhn key (La Poste's exception is left to the reader), SIREN + NIC equal to the SIRET, the
  state A or F, dates empty or YYYY-MM-DD that exist, an ASCII etablissementSiege, and the
  lengths that sirene_stock._fit checks.

A line left to the reader is read alone, which gives what the reader gives it within the file
only if the line holds a whole CSV record; when one does not (a quoted field running on to the
next line), `columnar_pass` gives up and the whole chunk goes to the reader.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import hashlib
import itertools
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from operator import methodcaller
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as arrow_csv

from registry.rcd.records import AdministrativeState, CopyRows, EstablishmentRecord
from registry.rcd.sirene_stock import (
    _LIMITS,
    WITHHELD,
    StockKind,
    column_places,
    header_names,
)
from registry.rcd.store import establishment_line

# Bytes that make a line "not plain": CSV quoting and line ends, what COPY's text format would
# need escaped, NUL (which rejects its line), and a byte order mark (which arrow's CSV reader
# drops at the start of its input, and Python's keeps).
_NOT_PLAIN = (b'"', b"\0", b"\r", b"\t", b"\\", "\ufeff".encode())
_KIND = StockKind.ESTABLISHMENTS
_COLUMNS = (*EstablishmentRecord._fields, "row_hash")
_ACTIVE, _CEASED = str(int(AdministrativeState.ACTIVE)), str(int(AdministrativeState.CEASED))
# Luhn's sum over four digits: from the last, kept, doubled (digits of the result summed),
# kept, doubled; 14 digits are three such groups and a last group of two.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_LUHN_4 = pa.array(
    [
        sum(_DOUBLED[int(d)] if place % 2 else int(d) for place, d in enumerate(f"{n:04d}"[::-1]))
        for n in range(10_000)
    ],
    pa.int64(),
)
_MONTH_DAYS = pa.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], pa.int64())
_BLAKE2B_8 = partial(hashlib.blake2b, digest_size=8)


@dataclass(frozen=True)
class ColumnarChunk:
    """What the vectorised pass made of a chunk: the COPY lines (without ordinal and hash) of
    its clean lines, their SIRETs and places in the chunk (ascending), and the places of the
    lines the Python reader must read (ascending)."""

    lines: pa.Array
    sirets: pa.Array
    places: Sequence[int]
    others: list[int]


def _whole_record(line: bytes) -> bool:
    """True when a line, read alone by the Python reader, ends its CSV record on that line
    (so that the reader reads it the same within the file)."""
    asked = 0
    text = line.replace(b"\0", b"").decode("utf-8", "replace")  # as sirene_import._decoded

    def lines() -> Iterator[str]:
        nonlocal asked
        asked += 1
        yield text
        asked += 1

    with contextlib.suppress(csv.Error, StopIteration):
        next(csv.reader(lines(), strict=True))
    return asked == 1


def _not_valid_utf8(raw_lines: Sequence[bytes]) -> list[int]:
    found = []
    for place, line in enumerate(raw_lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            found.append(place)
    return found


def _data(values: pa.Array) -> pa.Buffer:
    """The bytes of a (non-empty) binary array's values, one after the other."""
    offsets = pa.Array.from_buffers(
        pa.int32(), len(values) + 1, [None, values.buffers()[1]], offset=values.offset
    )
    start, end = offsets[0].as_py(), offsets[len(values)].as_py()
    return values.buffers()[2].slice(start, end - start)


def _numbers(values: Iterable[int]) -> pa.Array:
    """Integers as their decimal text."""
    return pc.cast(pa.array(values, pa.int64()), pa.string())


def _mod(values: pa.Array, divisor: int) -> pa.Array:
    """values modulo divisor, for values >= 0."""
    return pc.subtract(values, pc.multiply(pc.divide(values, divisor), divisor))


def _luhn(siret: pa.Array) -> pa.Array:
    """Luhn over 14 ASCII digits (each value is), four digits at a time."""
    number = pc.cast(siret, pa.int64())
    total = pc.take(_LUHN_4, pc.divide(number, 10**12))
    for power in (0, 4, 8):
        group = _mod(pc.divide(number, 10**power) if power else number, 10_000)
        total = pc.add(total, pc.take(_LUHN_4, group))
    return pc.equal(_mod(total, 10), 0)


def _day_checked(value: pa.Array) -> pa.Array:
    """Whether each value is YYYY-MM-DD of a day that exists, computed value by value."""
    shaped = pc.match_substring_regex(value, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    sure = pc.if_else(shaped, value, "2000-01-01")
    year, month, day = (
        pc.cast(pc.utf8_slice_codeunits(sure, start, start + width), pa.int64())
        for start, width in ((0, 4), (5, 2), (8, 2))
    )
    month_ok = pc.and_(pc.greater_equal(month, 1), pc.less_equal(month, 12))
    leap = pc.or_(
        pc.and_(pc.equal(_mod(year, 4), 0), pc.not_equal(_mod(year, 100), 0)),
        pc.equal(_mod(year, 400), 0),
    )
    longest = pc.take(_MONTH_DAYS, pc.if_else(month_ok, month, 0))
    longest = pc.add(longest, pc.cast(pc.and_(leap, pc.equal(month, 2)), pa.int64()))
    exists = pc.and_(
        pc.and_(pc.greater_equal(year, 1), month_ok),
        pc.and_(pc.greater_equal(day, 1), pc.less_equal(day, longest)),
    )
    return pc.and_(shaped, exists)


def _day(value: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(clean, COPY text) of a date column: empty, or YYYY-MM-DD of a day that exists (what
    date.fromisoformat reads as it is: years 0001 to 9999)."""
    empty = pc.equal(value, "")
    try:  # the common case: arrow's strict YYYY-MM-DD reading takes them all (year 0 too)
        pc.cast(pc.if_else(empty, "2000-01-01", value), pa.date32())
        shaped = pc.and_(
            pc.equal(pc.binary_length(value), 10), pc.invert(pc.starts_with(value, "0000"))
        )
        clean = pc.or_(empty, shaped)
    except pa.ArrowInvalid:
        clean = pc.or_(empty, _day_checked(value))
    return clean, _choose(empty, "\\N", value)


def _choose(condition: pa.Array, then: pa.Array | str, otherwise: pa.Array | str) -> Any:
    """pc.if_else, skipped when the condition is the same for all."""
    if isinstance(then, pa.Array) and pc.all(condition).as_py():
        return then
    if isinstance(otherwise, pa.Array) and not pc.any(condition).as_py():
        return otherwise
    return pc.if_else(condition, then, otherwise)


def _cut(value: pa.Array, length: int) -> pa.Array:
    """value[:length] of each value, skipped when none is longer (in bytes)."""
    if (pc.max(pc.binary_length(value)).as_py() or 0) <= length:
        return value
    return pc.utf8_slice_codeunits(value, 0, length)


def _encode(table: pa.Table, present: list[str | None]) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(clean, COPY line, SIRET) of each row, after sirene_stock.establishment_of."""
    size = table.num_rows
    blank = pa.array([""] * size, pa.string())

    def column(name: str | None) -> pa.Array:
        if name is None:
            return blank
        return pc.utf8_trim_whitespace(table.column(name).combine_chunks())

    (siret, diffusion, created, head_office, postal_code, city, since, state, naf, siren, nic,
     sign, usual_name, number, suffix, street_type, street_name, complement, foreign_city,
     city_code, country) = map(column, present)  # fmt: skip
    digits = pc.and_(pc.equal(pc.binary_length(siret), 14), pc.ascii_is_decimal(siret))
    checks = [digits, _luhn(_choose(digits, siret, "0"))]
    checks.append(
        pc.or_(pc.equal(siren, ""), pc.equal(pc.binary_join_element_wise(siren, nic, ""), siret))
    )
    open_ = pc.is_in(diffusion, pa.array(["O", ""]))
    name = _choose(pc.not_equal(sign, ""), sign, usual_name)
    fits = pc.and_(
        pc.less_equal(pc.utf8_length(name), _LIMITS["name"]),
        pc.and_(
            pc.less_equal(pc.utf8_length(street_name), _LIMITS["street_name"]),
            pc.less_equal(pc.utf8_length(complement), _LIMITS["complement"]),
        ),
    )
    checks.append(pc.or_(pc.invert(open_), fits))
    city = _choose(pc.not_equal(city, ""), city, foreign_city)
    checks.append(pc.less_equal(pc.utf8_length(city), _LIMITS["city"]))
    checks.append(pc.less_equal(pc.utf8_length(country), _LIMITS["country"]))
    checks.append(pc.string_is_ascii(head_office))
    checks.append(pc.is_in(state, pa.array(["A", "F"])))
    created_ok, created_text = _day(created)
    since_ok, since_text = _day(since)
    checks += [created_ok, since_ok]
    clean = checks[0]
    for check in checks[1:]:
        clean = pc.and_(clean, check)
    # The fields of an open line, then those of a withheld one (its name and address dropped
    # but the commune): the line is one of the two.
    head = (siret,)
    tail = (
        _cut(postal_code, 10),
        city,
        _cut(city_code, 10),
        country,
        _choose(pc.equal(pc.ascii_lower(head_office), "true"), "t", "f"),
        _choose(pc.equal(state, "A"), _ACTIVE, _CEASED),
        created_text,
        since_text,
    )
    naf = _cut(naf, 8)
    address = (_cut(number, 10), _cut(suffix, 10), _cut(street_type, 10), street_name, complement)
    line = None
    if pc.any(open_).as_py():
        line = pc.binary_join_element_wise(*head, name, naf, *address, *tail, "f", "\t")
    if not pc.all(open_).as_py():
        withheld = pc.binary_join_element_wise(
            *head, WITHHELD, naf, "", "", "", "", "", *tail, "t", "\t"
        )
        line = withheld if line is None else pc.if_else(open_, line, withheld)
    return clean, line, siret


def _odd_lines(joined: bytes, ends: list[int], raw_lines: Sequence[bytes]) -> set[int]:
    """The places of the lines that are blank, hold a byte of _NOT_PLAIN, are not UTF-8 or are
    longer than a field may be."""
    odd = set()
    for byte in (*_NOT_PLAIN, b"\n\n"):
        at = joined.find(byte)
        while at >= 0:
            place = bisect.bisect_right(ends, at + len(byte) - 1)
            odd.add(place)
            at = joined.find(byte, ends[place] - len(byte) + 1)
    if raw_lines[0] == b"\n":
        odd.add(0)
    # A line longer than the csv module's field limit may hold a field the reader refuses
    # ("field larger than field limit"): the reader's word on it, not arrow's (no limit).
    limit = csv.field_size_limit()
    odd.update(place for place, line in enumerate(raw_lines) if len(line) > limit)
    try:  # arrow's UTF-8 check, without a copy
        pa.Array.from_buffers(
            pa.binary(), 1, [None, pa.array([0, len(joined)], pa.int32()).buffers()[1],
                             pa.py_buffer(joined)]
        ).cast(pa.string())  # fmt: skip
    except pa.ArrowInvalid:  # some line is not: find which, line by line
        odd.update(_not_valid_utf8(raw_lines))
    return odd


def _read_plain(data: bytes, names: list[str], wanted: list[str]) -> tuple[pa.Table, list[int]]:
    """The wanted columns of plain lines (CSV without quoting), and the places among them of
    the lines that do not have the header's number of fields (left out of the table)."""
    wrong: list[int] = []

    def skip(row: Any) -> str:
        wrong.append(row.number - 1)  # numbered from 1
        return "skip"

    table = arrow_csv.read_csv(
        pa.BufferReader(data),
        read_options=arrow_csv.ReadOptions(
            column_names=names, use_threads=False, block_size=max(1 << 20, len(data) + 1)
        ),
        parse_options=arrow_csv.ParseOptions(
            quote_char=False, double_quote=False, escape_char=False, ignore_empty_lines=False,
            invalid_row_handler=skip,
        ),
        convert_options=arrow_csv.ConvertOptions(
            include_columns=wanted,
            column_types=dict.fromkeys(wanted, pa.string()),
            strings_can_be_null=False,
            check_utf8=False,
        ),
    )  # fmt: skip
    return table, wrong


def columnar_pass(header_line: str, raw_lines: Sequence[bytes]) -> ColumnarChunk | None:
    """The clean lines of a chunk of StockEtablissement data lines encoded, and the places of
    the others; None when a line not plain does not hold a whole CSV record, or when most are
    not plain (the reader then reads the chunk)."""
    header = header_names(header_line)
    width = len(header)
    joined = b"".join(raw_lines)
    ends = list(itertools.accumulate(map(len, raw_lines)))
    odd = _odd_lines(joined, ends, raw_lines)
    if 2 * len(odd) > len(raw_lines):  # mostly for the reader (a file quoting every field)
        return None
    if not all(_whole_record(raw_lines[place]) for place in odd):
        return None
    plain = range(len(raw_lines))
    data = joined
    if odd:
        plain = [place for place in plain if place not in odd]  # type: ignore[assignment]
        data = b"".join([raw_lines[place] for place in plain])
    names = [f"c{index}" for index in range(width)]
    present = [names[index] if index < width else None for index in column_places(header, _KIND)]
    wanted = sorted({name for name in present if name is not None})
    table, wrong = _read_plain(data, names, wanted) if data else (None, [])
    if wrong:
        if min(wrong) < 0:  # arrow did not number them: the reader reads the chunk
            return None
        odd.update(plain[row] for row in wrong)
        plain = [place for place in plain if place not in odd]  # type: ignore[assignment]
    if table is None or table.num_rows == 0:
        return ColumnarChunk(pa.array([], pa.string()), pa.array([], pa.string()), [], sorted(odd))
    if table.num_rows != len(plain):  # never seen; the reader then reads the chunk
        return None
    clean, line, siret = _encode(table, present)
    unclean = pc.indices_nonzero(pc.invert(clean)).to_pylist()
    places: Sequence[int] = plain
    if unclean:
        odd.update(plain[row] for row in unclean)
        places = pc.filter(pa.array(plain, pa.int64()), clean).to_pylist()
    return ColumnarChunk(pc.filter(line, clean), pc.filter(siret, clean), places, sorted(odd))


def copy_rows(chunk: ColumnarChunk, read: Sequence[tuple[int, EstablishmentRecord]]) -> CopyRows:
    """The chunk's establishments as CopyRows: its clean lines, and the records the Python
    reader made of its other lines, at their places (ascending); as store.encode_copy would
    encode all of them in the chunk's order."""
    lines, sirets = chunk.lines, chunk.sirets
    if read:
        places = pa.array([*chunk.places, *(place for place, _ in read)], pa.int64())
        lines = pa.concat_arrays(
            [lines, pa.array([establishment_line(record) for _, record in read], pa.string())]
        )
        sirets = pa.concat_arrays([sirets, pa.array([r.siret for _, r in read], pa.string())])
        order = pc.sort_indices(places)
        lines, sirets = pc.take(lines, order), pc.take(sirets, order)
    count = len(lines)
    if pc.count_distinct(sirets).as_py() < count:  # of several of one key the last wins,
        # at the place of the first
        kept = dict(zip(sirets.to_pylist(), lines.to_pylist(), strict=True))
        lines = pa.array(list(kept.values()), pa.string())
    if not len(lines):
        return CopyRows("establishments", _COLUMNS, b"", 0)
    # records._digest of each line: blake2b's 8 bytes, read as a signed big-endian integer.
    digests = map(methodcaller("digest"), map(_BLAKE2B_8, lines.cast(pa.binary()).to_pylist()))
    hashes = struct.unpack(f">{len(lines)}q", b"".join(digests))
    rows = pc.binary_join_element_wise(
        _numbers(range(1, len(lines) + 1)), lines, _numbers(hashes), "\t"
    )
    rows = pc.binary_join_element_wise(rows, "", "\n")
    low, high = pc.min_max(sirets).values()
    text = _data(rows).to_pybytes()
    return CopyRows("establishments", _COLUMNS, text, count, low.as_py(), high.as_py())
