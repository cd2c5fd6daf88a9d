"""Reading NEODeS files (DSN): rubric lines, then block instances, streamed.

A file is ISO-8859-1 text, one rubric a line, `Sxx.Gxx.xx.xxx,'value'`, LF or CRLF. Apostrophes
inside a value are not escaped: a line splits on its first `,'` and loses only its final `'`.
The hierarchy is implicit: a rubric opens a new instance of its block when its number is not
greater than the previous rubric's of the same instance, or when the block was not open; opening
a block closes every open block that is not one of its ancestors in the norm's block tree.
What cannot be placed without a guess (a block the norm does not know, a block whose parent is
not open, a block out of the norm's order) is a fault, never attached to a neighbour: every step
reads the file through `walk`, one parse whose faults every step refuses. The
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
from typing import Any, BinaryIO

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
    # Its rubrics as a dict (built once, when a control rule reads them).
    values_map: dict[str, str] | None = field(default=None, repr=False)
    # What the control rules gather from its descendants (registry/dsn/controls.py).
    facts: dict[str, list[str]] | None = field(default=None, repr=False)

    @property
    def line(self) -> int:
        """The line number of its first rubric."""
        return self.lines[0].line

    def values(self) -> dict[str, str]:
        """Its rubrics and their values."""
        found = self.values_map
        if found is None:
            found = self.values_map = {item.rubric: item.value for item in self.lines}
        return found

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


# Rubric ids already seen well formed, of the norm's blocks, in any file of this process (whether
# an id is well formed depends on nothing else; a file uses a few hundred, the norm some 2,000:
# a file of made-up ids does not fill it).
_WELL_FORMED: set[str] = set()


class RubricReader:
    """Reads a file's lines one by one (`read`), numbering them; `read_rubrics` and a deposit's
    scan as its bytes arrive both read through it, so they read every line alike."""

    def __init__(self) -> None:
        self.number = 0

    def read(self, raw: bytes) -> RubricLine | None:
        """The next line (`raw` with its line end, if any) as a RubricLine, None when blank."""
        self.number += 1
        number = self.number
        if len(raw) > MAX_LINE_BYTES:
            return RubricLine(number, "", "", f"the line is longer than {MAX_LINE_BYTES} bytes")
        # One line end, LF or CRLF: any other CR is a byte of the line.
        text = raw.decode("iso-8859-1").removesuffix("\n").removesuffix("\r")
        rubric, separator, rest = text.partition(",'")
        # A known rubric id holds none: only the rest of the line needs a look.
        if separator and rest.endswith("'") and rubric in _WELL_FORMED and rest.isprintable():
            return RubricLine(number, rubric, rest[:-1])
        column = outside_charset(text)
        if column:
            rubric = rubric if _RUBRIC.fullmatch(rubric) else ""
            in_value = bool(rubric) and len(rubric) + 2 < column < len(text) and text[-1] == "'"
            problem = _charset_problem(ord(text[column - 1]), column, in_value)
            return RubricLine(number, rubric, "", problem, column)
        if not text.strip():
            return None
        if not _RUBRIC.fullmatch(rubric):
            return RubricLine(number, "", "", "the line does not start with a rubric id")
        if not separator or not rest.endswith("'"):
            return RubricLine(number, rubric, "", "the value is not written ,'value'")
        if len(_WELL_FORMED) < _KNOWN_RUBRICS and rubric[:10] in _PARENTS:  # the norm's only
            _WELL_FORMED.add(rubric)
        return RubricLine(number, rubric, rest[:-1])


class LineSplitter:
    """Cuts a stream of chunks into lines, each with its LF (the last one may have none), as a
    file is read line by line, but bounded: of a line longer than MAX_LINE_BYTES only its first
    MAX_LINE_BYTES + 1 bytes are kept (enough for it to be read as too long). The deposit's scan
    and the pipeline cut lines with it, so they see the same lines."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines that this chunk completes."""
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()[: MAX_LINE_BYTES + 1]
        return [line[: MAX_LINE_BYTES + 1] + b"\n" for line in lines]

    def finish(self) -> bytes:
        """The last line, when the file does not end with a line end (else b"")."""
        rest, self.rest = self.rest, b""
        return rest


def text_lines(text: bytes) -> list[bytes]:
    """The lines of a text that ends where a line ends or where the file does (a segment of the
    fast path: registry/dsn/individual_segments.py `segments`), bounded as LineSplitter does."""
    pieces = text.split(b"\n")
    last = pieces.pop()  # b"" after a final line end; else the file's last line, without one
    lines = [raw[: MAX_LINE_BYTES + 1] + b"\n" for raw in pieces]
    if last:
        lines.append(last[: MAX_LINE_BYTES + 1])
    return lines


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a stream of chunks (see LineSplitter)."""
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    last = splitter.finish()
    if last:
        yield last


def read_rubrics(stream: BinaryIO | Iterable[bytes]) -> Iterator[RubricLine]:
    """Every non-empty line as a RubricLine; malformed lines carry their problem, lines with a
    byte outside the norm's character set too (with its column)."""
    reader = RubricReader()
    read = reader.read
    for raw in stream:
        item = read(raw)
        if item is not None:
            yield item


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


def block_ancestors(block: str) -> tuple[str, ...] | None:
    """The block's ancestors in the norm's tree, nearest first; None for a block not in it."""
    return _ANCESTORS.get(block)


# Blocks that may open a file: an envoi on its own, or a lot envelope.
_ROOTS = frozenset({"S10.G00.00", "S05.G51.00"})
_NOTHING: tuple[BlockInstance, ...] = ()


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding: where, which rule, how grave. The reading's own (a line it could not place
    without a guess, attached to no block) always block."""

    line: int
    rubric: str
    rule: str
    blocking: bool
    message: str
    # The norm's own wording of the rule, in French (the workbook's message, or ours for the
    # format's NEODES-* rules); "" where there is none.
    message_fr: str = ""

    @property
    def severity(self) -> str:
        """blocking or warning."""
        return "blocking" if self.blocking else "warning"

    def as_dict(self) -> dict[str, object]:
        """Plain data, for JSON."""
        return {
            "line": self.line,
            "rubric": self.rubric,
            "rule": self.rule,
            "blocking": self.blocking,
            "severity": self.severity,
            "message": self.message,
            "message_fr": self.message_fr,
        }


class BlockReader:
    """Groups rubric lines into block instances, the one reading of a file's structure that
    every step (the deposit's scan, validation, relations, routing) uses.

    The norm's rule: a rubric continues the open instance of its block when its number is
    greater than that instance's last rubric; otherwise it opens a new instance. Nothing is
    re-attached silently: a line of a block the norm does not know, a block opened where its
    parent is not open, a block after a sibling the norm puts after it are `faults` (the line
    of an unknown block is kept in no instance; a misplaced instance is kept out of the tree
    with its own lines and its children's, so that the one fault is reported on the block at
    fault and the well-placed blocks after it read as if it were not there), and lines that
    could not be read (`problem`) belong to no instance either."""

    def __init__(self) -> None:
        self.open: list[BlockInstance] = []
        self.faults: list[Anomaly] = []
        # A misplaced instance (a fault), kept out of the tree with its own lines and its
        # children's, so that the well-placed blocks after it are read as if it were not there.
        self.detached: BlockInstance | None = None

    def feed(self, item: RubricLine) -> Sequence[BlockInstance]:
        """The block instances that this line closes (innermost first)."""
        if item.problem:
            return _NOTHING
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
        if ancestors is None:
            self._fault(item, "NEODES-UNKNOWN-BLOCK", f"block {block} is not in the norm")
            return _NOTHING
        detached = self.detached
        if detached is not None:
            if (block == detached.block and item.rubric > detached.lines[-1].rubric) or (
                detached.block in ancestors
            ):
                detached.lines.append(item)  # the misplaced block's own lines and children
                return _NOTHING
            self.detached = None
        # The nearest open ancestor: the instance opens under it, closing what is below it (a
        # new instance of the same block closes the previous one too).
        depth = len(self.open)
        while depth and self.open[depth - 1].block not in ancestors:
            depth -= 1
        parent = self.open[depth - 1] if depth else None
        expected = _PARENTS[block]
        if (parent.block if parent else None) != expected and not (
            parent is None and block in _ROOTS
        ):
            if parent is not None:
                return self._detach(item, "NEODES-PARENT", (
                    f"block {block} opens under {parent.block}, its parent in the norm is "
                    f"{expected}: it is read as misplaced, with its children"
                ))  # fmt: skip
            # Nothing open: nothing to misplace it against; it opens as a root, a fault.
            self._fault(item, "NEODES-PARENT", (
                f"block {block} opens at the top, its parent in the norm is {expected}"
            ))  # fmt: skip
        if parent is not None:
            later = [other for other in parent.children if other > block]
            if later:
                first = next(
                    (i.line for i in reversed(self.open[depth:]) if i.block == min(later)), 0
                )
                after = f" (line {first})" if first else ""
                return self._detach(item, "NEODES-ORDER", (
                    f"block {block} comes after {min(later)}{after}, which the norm puts after "
                    "it: it is read as misplaced, with its children"
                ))  # fmt: skip
        closed = self.open[depth:][::-1]
        del self.open[depth:]
        instance = BlockInstance(block, tuple(i.block for i in self.open), [item])
        if parent is not None:
            instance.parent = parent
            siblings = parent.children
            siblings[block] = siblings.get(block, 0) + 1
        self.open.append(instance)
        return closed

    def _detach(self, item: RubricLine, rule: str, message: str) -> Sequence[BlockInstance]:
        """A misplaced instance: a fault, attached to nothing, the open path left as it was."""
        self._fault(item, rule, message)
        self.detached = BlockInstance(item.rubric[:10], (), [item], out_of_order=True)
        return _NOTHING

    def _fault(self, item: RubricLine, rule: str, message: str) -> None:
        self.faults.append(Anomaly(item.line, item.rubric, rule, True, message))

    def close(self) -> Iterator[BlockInstance]:
        """The blocks still open at the end of the file, innermost first."""
        while self.open:
            yield self.open.pop()


class BlockListener:
    """What a step of the file's reading sees, in this order for each line: the faults the line
    makes, the instances it closes (innermost first), the instance it opens, the line itself;
    at the end, the instances still open and `end`. Subclasses override what they need."""

    def fault(self, fault: Anomaly) -> None:
        """A line the reader could not place."""

    def closed(self, instance: BlockInstance) -> None:
        """An instance and all its children are read."""

    def opened(self, instance: BlockInstance) -> None:
        """An instance's first line is read (its parent's own lines are all read)."""

    def line(self, item: RubricLine) -> None:
        """A line of the file (read or not: `item.problem` says)."""

    def end(self) -> None:
        """The file is read."""

    def individual(self, individual: Any) -> None:
        """A clean individual that the planned walk takes whole (a PlannedIndividual:
        registry/dsn/planned_walk.py, which this module may not name), its lines, its instances
        opening and closing. A listener that does not override this hears them one by one
        instead, as the walk line by line shows them."""


class Walker:
    """One reading of a file shown to every listener: `push` each line in order, then
    `finish`. One parse for all of them, so no two steps can see different structures."""

    def __init__(self, *listeners: BlockListener) -> None:
        self.listeners = listeners
        self.reader = BlockReader()
        # The `line` of the listeners that hear lines (BlockListener's own does nothing): all
        # a line that continues its instance tells them, most lines of a file.
        self.hearing = [listener.line for listener in listeners
                        if type(listener).line is not BlockListener.line]  # fmt: skip
        # Instances that the next line closes for some listeners only, innermost first: those
        # of an individual the planned walk showed these listeners line by line (the others
        # took it whole): registry/dsn/planned_walk.py. That line is always the next
        # individual's first, which opens an instance: `push` hears it with its events.
        self.tail: tuple[Sequence[BlockListener], Sequence[BlockInstance]] | None = None

    def push(self, item: RubricLine) -> None:
        """The next line of the file."""
        reader = self.reader
        closed = reader.feed(item)
        opened = reader.open[-1] if reader.open else None
        if opened is not None and opened.lines[0] is not item:
            opened = None
        faults = reader.faults
        if not closed and opened is None and not faults:  # the same events, fewer calls
            for line in self.hearing:
                line(item)
            return
        tail = self.tail
        self.tail = None
        for listener in self.listeners:
            for fault in faults:
                listener.fault(fault)
            if tail is not None and listener in tail[0]:
                for instance in tail[1]:
                    listener.closed(instance)
            for instance in closed:
                listener.closed(instance)
            if opened is not None:
                listener.opened(opened)
            listener.line(item)
        faults.clear()

    def finish(self) -> None:
        """The end of the file: closes what is open."""
        for instance in self.reader.close():
            for listener in self.listeners:
                listener.closed(instance)
        for listener in self.listeners:
            listener.end()


def walk(stream: BinaryIO | Iterable[bytes], *listeners: BlockListener) -> None:
    """Reads a file once and shows it to every listener (see Walker)."""
    walker = Walker(*listeners)
    push = walker.push
    for item in read_rubrics(stream):
        push(item)
    walker.finish()


def read_blocks(stream: BinaryIO | Iterable[bytes]) -> Iterator[BlockInstance]:
    """Every block instance of a file, each when it closes (children before their parent)."""
    reader = BlockReader()
    for item in read_rubrics(stream):
        yield from reader.feed(item)
    yield from reader.close()
