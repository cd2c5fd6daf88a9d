"""Reading NEODeS files (DSN): rubric lines, then block instances, streamed.

A file is ISO-8859-1 text, one rubric a line, `Sxx.Gxx.xx.xxx,'value'`, LF or CRLF. Apostrophes
inside a value are not escaped: a line splits on its first `,'` and loses only its final `'`.
The hierarchy is implicit: a rubric opens a new instance of its block when its number is not
greater than the previous rubric's of the same instance, or when the block was not open; opening
a block closes every open block that is not one of its ancestors in the norm's block tree. The
tree is the same for every supported norm version (the official workbook's), lot envelope
blocks (S05, S06, S96, S95) included.

Blocks are yielded as soon as they close, so memory holds only the open path (an envoi's
headers down to one individual's current block), never the file.

The character set. The norm writes files in ISO-8859-1 (../shared/DOMAIN.md: "norm NEODeS,
ISO-8859-1"), and its tables give no narrower repertoire for free-text rubrics: the official
workbook (../shared/norm/dsn-datatypes-CT2024.xlsx: sheets Data Types, Fields and Messages)
gives Alphanumeric types a length and often no regex (names, addresses, job titles have none),
and the open-neodes tables (../shared/norm/norm-*.yaml) only a type "X" and a length; neither
states a character set. So the set is ISO/IEC 8859-1's own: its
graphic characters, bytes 0x20-0x7E and 0xA0-0xFF (letters, digits, punctuation, accented
letters, the no-break space). Bytes 0x00-0x1F, 0x7F and 0x80-0x9F are no characters of ISO/IEC
8859-1 (the IANA charset "ISO-8859-1" maps them to the C0 and C1 control codes): a NUL, a TAB, a
CR inside a line, a Windows-1252 euro sign or curly quote (0x80-0x9F), a UTF-8 accented capital
(0xC3 0x80-0x9F) are never data, and the only control characters of a file are its line ends,
LF or CRLF. A line holding one anywhere is not read: it carries its problem and the column of
the first such byte (never the value: it may be a NIR or a name), like any malformed line, so
whoever reads the file (validation, routing) sees the same lines; the validator refuses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from registry.dsn.norm import ENVELOPE_VERSION, load

_RUBRIC = re.compile(r"S[0-9]{2}\.G[0-9]{2}\.[0-9]{2}\.[0-9]{3}")
MAX_LINE_BYTES = 4096
_KNOWN_RUBRICS = 10_000
# The bytes that are no character of the norm's set (see the module's docstring), decoded.
_OUTSIDE_CHARSET = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(slots=True)  # not frozen: constructing a frozen dataclass costs twice as much
class RubricLine:
    """One line of the file: its number, rubric id and value, or the problem that kept it from
    being read (then rubric and value are what could be made out)."""

    line: int
    rubric: str
    value: str
    problem: str = ""
    # When the line holds a byte outside the norm's character set: the column of the first one
    # (from 1), and `problem` says so; 0 otherwise.
    column: int = 0

    @property
    def block(self) -> str:
        """The block id: "S21.G00.30" of "S21.G00.30.001"."""
        return self.rubric[:10]


@dataclass(slots=True)
class BlockInstance:
    """One instance of a block with its rubric lines, and the ids of its open ancestors."""

    block: str
    ancestors: tuple[str, ...]
    lines: list[RubricLine] = field(default_factory=list)
    # How many instances of each child block it holds so far.
    children: dict[str, int] = field(default_factory=dict)
    # True when it came after a sibling of a later block (the norm orders blocks by id).
    out_of_order: bool = False
    # The instance it belongs to (None for a root).
    parent: BlockInstance | None = field(default=None, repr=False)

    @property
    def line(self) -> int:
        """The line number of its first rubric."""
        return self.lines[0].line

    def value(self, rubric: str) -> str | None:
        """The value of a rubric of this instance (the first, if repeated)."""
        for item in self.lines:
            if item.rubric == rubric:
                return item.value
        return None


def outside_charset(text: str) -> int:
    """The column (from 1) of the first character of `text` outside the norm's character set
    (the graphic characters of ISO-8859-1: see the module's docstring), 0 when there is none."""
    if text.isprintable():  # fast, in C; also False for the no-break space and the soft hyphen,
        return 0  # graphic characters of ISO-8859-1 that the search below lets pass
    found = _OUTSIDE_CHARSET.search(text)
    return 0 if found is None else found.start() + 1


def _charset_problem(code: int, column: int, in_value: bool) -> str:
    """What is wrong, without the value (it may be a NIR or a name)."""
    kind = {0x00: "NUL", 0x09: "TAB", 0x0D: "CR", 0x7F: "DEL"}.get(code) or (
        "a C0 control character" if code < 0x20 else "a C1 control character"
    )
    where = "the value" if in_value else "the line"
    return (
        f"{where} holds byte 0x{code:02X} ({kind}) at column {column}, outside the norm's "
        "character set (the graphic characters of ISO-8859-1)"
    )


def read_rubrics(stream: BinaryIO | Iterable[bytes]) -> Iterator[RubricLine]:
    """Every non-empty line as a RubricLine; malformed lines carry their problem, lines with a
    byte outside the norm's character set too (with its column)."""
    known: set[str] = set()  # rubric ids already seen well formed (a file uses a few hundred)
    for number, raw in enumerate(stream, start=1):
        if len(raw) > MAX_LINE_BYTES:
            yield RubricLine(number, "", "", f"the line is longer than {MAX_LINE_BYTES} bytes")
            continue
        # One line end, LF or CRLF: any other CR is a byte of the line.
        text = raw.decode("iso-8859-1").removesuffix("\n").removesuffix("\r")
        rubric, separator, rest = text.partition(",'")
        # A known rubric id holds none: only the rest of the line needs a look.
        if separator and rest.endswith("'") and rubric in known and rest.isprintable():
            yield RubricLine(number, rubric, rest[:-1])
            continue
        column = outside_charset(text)
        if column:
            rubric = rubric if _RUBRIC.fullmatch(rubric) else ""
            in_value = bool(rubric) and len(rubric) + 2 < column < len(text) and text[-1] == "'"
            problem = _charset_problem(ord(text[column - 1]), column, in_value)
            yield RubricLine(number, rubric, "", problem, column)
        elif not text.strip():
            continue
        elif not _RUBRIC.fullmatch(rubric):
            yield RubricLine(number, "", "", "the line does not start with a rubric id")
        elif not separator or not rest.endswith("'"):
            yield RubricLine(number, rubric, "", "the value is not written ,'value'")
        else:
            if len(known) < _KNOWN_RUBRICS:
                known.add(rubric)
            yield RubricLine(number, rubric, rest[:-1])


def _tree() -> dict[str, str | None]:
    parents: dict[str, str | None] = {b: s.parent for b, s in load("P24V01").blocks.items()}
    parents.update({b: s.parent for b, s in load(ENVELOPE_VERSION).blocks.items()})
    # An envoi inside a lot sits in a group.
    parents["S10.G00.00"] = "S06.G51.00"
    return parents


_PARENTS = _tree()


def _ancestors(block: str) -> tuple[str, ...]:
    chain = []
    parent = _PARENTS.get(block)
    while parent is not None:
        chain.append(parent)
        parent = _PARENTS.get(parent)
    return tuple(chain)


_ANCESTORS = {block: _ancestors(block) for block in _PARENTS}
_NOTHING: tuple[BlockInstance, ...] = ()


class BlockReader:
    """Groups rubric lines into block instances; `unknown_blocks` collects lines of blocks the
    norm does not know (they are kept in the block that was open)."""

    def __init__(self) -> None:
        self.open: list[BlockInstance] = []
        self.unknown: list[RubricLine] = []

    def feed(self, item: RubricLine) -> Sequence[BlockInstance]:
        """The block instances that this line closes (innermost first)."""
        block = item.rubric[:10]
        current = self.open[-1] if self.open else None
        if (
            current is not None
            and current.block == block
            and item.rubric > current.lines[-1].rubric
        ):
            current.lines.append(item)
            return _NOTHING
        ancestors = _ANCESTORS.get(block)
        if item.problem or ancestors is None:
            if not item.problem:
                self.unknown.append(item)
            if current is not None:
                current.lines.append(item)
            return _NOTHING
        # Close everything down to the nearest open ancestor (a new instance of the same block
        # closes the previous one too).
        closed = []
        while self.open and self.open[-1].block not in ancestors:
            closed.append(self.open.pop())
        path = tuple(instance.block for instance in self.open)
        instance = BlockInstance(block, path, [item])
        if self.open:
            instance.parent = self.open[-1]
            siblings = instance.parent.children
            instance.out_of_order = any(other > block for other in siblings)
            siblings[block] = siblings.get(block, 0) + 1
        self.open.append(instance)
        return closed

    def close(self) -> Iterator[BlockInstance]:
        """The blocks still open at the end of the file, innermost first."""
        while self.open:
            yield self.open.pop()


def read_blocks(stream: BinaryIO | Iterable[bytes]) -> Iterator[BlockInstance]:
    """Every block instance of a file, each when it closes (children before their parent)."""
    reader = BlockReader()
    for item in read_rubrics(stream):
        yield from reader.feed(item)
    yield from reader.close()
