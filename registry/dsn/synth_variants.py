"""Variants of the synthetic DSN files that break or keep a control rule: the examples each rule
of registry/dsn/control_rules/ carries (`break` and `pass`), applied to a base file.

An example is a list of edits, each a JSON list:
- ["set", RUBRIC, VALUE, NTH=1]: the NTH line of RUBRIC gets VALUE;
- ["drop", RUBRIC, NTH=1]: removes the NTH line of RUBRIC ("all": every one);
- ["add", RUBRIC, VALUE, NTH=1]: adds RUBRIC to the NTH instance of its block, in its place;
- ["add_block", BLOCK, [[RUBRIC, VALUE], ...], NTH=1]: adds an instance of BLOCK under the NTH
  instance of its parent, after its siblings that the norm puts before it;
- ["drop_block", BLOCK, NTH=1]: removes the NTH instance of BLOCK with its children.
The envoi's rubric count (S90.G00.90.001) is then set to the lines there are, unless an edit
sets it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry.dsn.reader import block_ancestors
from registry.dsn.synth import generate

# The files the examples start from: two employees of a monthly DSN, or one event.
BASES: dict[str, Callable[[], list[bytes]]] = {
    "monthly": lambda: list(generate(2)),
    "sick-leave": lambda: list(generate(1, nature="04")),
    "return-to-work": lambda: list(generate(1, nature="05")),
    "end-of-contract": lambda: list(generate(1, nature="07")),
}


class EditError(ValueError):
    """An example's edit does not apply to its base file."""


def _rubric(line: bytes) -> str:
    return line[:14].decode("iso-8859-1")


def _line(rubric: str, value: str) -> bytes:
    return f"{rubric},'{value}'\r\n".encode("iso-8859-1")


def _starts(lines: list[bytes], block: str) -> list[int]:
    """Where each instance of `block` starts."""
    found = []
    previous = ""
    for position, line in enumerate(lines):
        rubric = _rubric(line)
        if rubric[:10] == block and (previous[:10] != block or rubric <= previous):
            found.append(position)
        previous = rubric
    return found


def _below(block: str, ancestor: str) -> bool:
    chain = block_ancestors(block)
    return chain is not None and ancestor in chain


def _extent(lines: list[bytes], start: int) -> int:
    """The end (exclusive) of the instance starting at `start`, its children included."""
    block = _rubric(lines[start])[:10]
    position = start + 1
    previous = _rubric(lines[start])
    while position < len(lines):
        rubric = _rubric(lines[position])
        if rubric[:10] == block:
            if rubric <= previous:
                break
        elif not _below(rubric[:10], block):
            break
        previous = rubric if rubric[:10] == block else previous
        position += 1
    return position


def _nth(lines: list[bytes], block: str, nth: int) -> int:
    starts = _starts(lines, block)
    if len(starts) < nth:
        raise EditError(f"no instance #{nth} of {block}")
    return starts[nth - 1]


def _set(lines: list[bytes], rubric: str, value: str, nth: int = 1) -> None:
    positions = [i for i, line in enumerate(lines) if _rubric(line) == rubric]
    if len(positions) < nth:
        raise EditError(f"no line #{nth} of {rubric}")
    lines[positions[nth - 1]] = _line(rubric, value)


def _drop(lines: list[bytes], rubric: str, nth: int | str = 1) -> None:
    positions = [i for i, line in enumerate(lines) if _rubric(line) == rubric]
    if nth == "all":
        chosen = positions
    elif isinstance(nth, int) and len(positions) >= nth:
        chosen = [positions[nth - 1]]
    else:
        raise EditError(f"no line #{nth} of {rubric}")
    for position in reversed(chosen):
        del lines[position]


def _add(lines: list[bytes], rubric: str, value: str, nth: int = 1) -> None:
    start = _nth(lines, rubric[:10], nth)
    position = start
    while position < len(lines):
        current = _rubric(lines[position])
        if current[:10] != rubric[:10] or (
            position > start and current <= _rubric(lines[position - 1])
        ):
            break
        if current == rubric:
            raise EditError(f"{rubric} is already in instance #{nth}")
        if current > rubric:
            break
        position += 1
    lines.insert(position, _line(rubric, value))


def _add_block(lines: list[bytes], block: str, items: list[list[str]], nth: int = 1) -> None:
    chain = block_ancestors(block)
    if not chain:
        raise EditError(f"{block} has no parent block")
    parent = chain[0]
    start = _nth(lines, parent, nth)
    end = _extent(lines, start)
    position = start
    while position < end:
        rubric = _rubric(lines[position])
        if rubric[:10] != parent:
            # the child of `parent` this line belongs to
            own = rubric[:10]
            ancestors = block_ancestors(own) or ()
            child = (
                own
                if ancestors[:1] == (parent,)
                else next(
                    (a for a in ancestors if (block_ancestors(a) or ())[:1] == (parent,)), own
                )
            )
            if child > block:
                break
        position += 1
    new = [
        _line(rubric if "." in rubric[10:] else f"{block}.{rubric}", value)
        for rubric, value in items
    ]
    lines[position:position] = new


def _drop_block(lines: list[bytes], block: str, nth: int = 1) -> None:
    start = _nth(lines, block, nth)
    del lines[start : _extent(lines, start)]


_EDITS: dict[str, Callable[..., None]] = {
    "set": _set, "drop": _drop, "add": _add, "add_block": _add_block, "drop_block": _drop_block,
}  # fmt: skip


def apply(base: str, edits: list[list[Any]]) -> bytes:
    """The base file with the edits applied, its rubric count set (EditError when one does not
    apply)."""
    if base not in BASES:
        raise EditError(f"unknown base file {base!r}: one of {', '.join(BASES)}")
    lines = BASES[base]()
    counted = True
    for edit in edits:
        name, *args = edit
        if name not in _EDITS:
            raise EditError(f"unknown edit {name!r}")
        if args and args[0] == "S90.G00.90.001":
            counted = False
        _EDITS[name](lines, *args)
    if counted:
        _set(lines, "S90.G00.90.001", str(len(lines)))
    return b"".join(lines)
