"""Validation's fast path: an individual (S21.G00.30 and the blocks under it) checked as one
piece of text instead of line by line, when it is clean.

A monthly DSN is mostly individuals, and most individuals of a file have the same shape (the
same rubrics in the same order). For each shape, once per norm version, this module builds a
plan by running the one reader (registry/dsn/reader.py, BlockReader) over the shape's rubrics:
its block instances, their parents, their child counts; and one regular expression that
matches the individual's text only if every line is well formed, in the norm's character set,
and of its rubric's data type (length, allowed values, the norm's regex, calendar dates). An
individual is then checked with one `fullmatch` in C, and the control rules of its blocks run
on the values the match captured.

The fast path only ever concludes "clean": when anything is amiss (no plan for the shape, the
expression does not match, a cardinality, a control rule, a NIR), it changes nothing and the
individual is read line by line by the reference path, which reports the anomalies. So its
outcome is the reference path's, by construction; tests/dsn/test_dsn_fast_path.py compares
both on broken files.

The plans and the cutting of a file into individuals (`segments`) serve the reading after
validation too: the planned walk (registry/dsn/planned_walk.py) takes whole the individuals
that match a plan of their shape.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from registry.dsn.cardinalities import cardinality_faults
from registry.dsn.controls import ControlSet, ShapeCheck, ShapeInstance, compile_shape
from registry.dsn.norm import Norm, RubricSpec
from registry.dsn.reader import MAX_LINE_BYTES, BlockInstance, BlockReader, RubricLine

INDIVIDUAL = "S21.G00.30"
NIR = "S21.G00.30.001"
# Where an individual starts: a line of S21.G00.30 after a line of another block.
BOUNDARY = re.compile(rb"\n(?!S21\.G00\.30\.)[^\n]*\n(?=S21\.G00\.30\.)")
# The text without its values: a shape's key.
SHAPE = re.compile(rb",'[^\n]*")
# A value's characters: the graphic characters of ISO-8859-1 (registry/dsn/reader.py).
_CHAR = "[\\x20-\\x7e\\xa0-\\xff]"
# Longest value a fast line holds (a longer line goes the reference way, which judges its length).
_LONGEST = MAX_LINE_BYTES - 100
_END = "'\\r?\\n"
# DDMMYYYY, a calendar date (29 February in leap years only).
_CALENDAR = (
    "(?:(?:0[1-9]|1[0-9]|2[0-8])(?:0[1-9]|1[0-2])[0-9]{4}"
    "|(?:29|30)(?:0[13-9]|1[0-2])[0-9]{4}"
    "|31(?:0[13578]|1[02])[0-9]{4}"
    "|2902(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00))"
)
# Regex syntax that could match a line end or a character outside a value: such a rubric's
# regex is applied to the captured value instead.
_UNSAFE = re.compile(r"\\[sSWD]|\[\^|(?<!\\)\.|\\n|\\r|\$|\^")
MAX_PLANS = 4096
MAX_DERIVED_BYTES = 32 << 20
MAX_SIGHTINGS = 1 << 16
# The time budget of plans: a share of the time validating so far, of which a new plan must find
# some 50 ms free (with its regex and compiled rules it takes 50 to 70 ms; what it took counts).
_SHARE = 0.1
_COST = 0.05
_FIRST_SHAPES = 4
_LATER_SHAPES = 128


class NoPlan(ValueError):
    """This shape goes the reference way."""


@dataclass
class Plan:
    """What one shape of individual is, for one norm version."""

    pattern: re.Pattern[str]
    # The match's groups -> each line's value, in order.
    values: Callable[[tuple[str, ...]], tuple[str, ...]]
    lines: int
    individuals: int
    # Per block instance, in the order the reference path closes them:
    blocks: tuple[str, ...]
    parents: tuple[tuple[int, ...], ...]  # its ancestors in the individual, nearest first
    children: tuple[dict[str, int], ...]
    # Values to check with their rubric's regex after the match: (group, regex).
    after: tuple[tuple[int, re.Pattern[str]], ...]
    # nature -> True when no instance has a cardinality out of bounds
    counts_ok: dict[str, bool] = field(default_factory=dict)
    # Per instance: its rubrics -> their positions in the values.
    own: tuple[dict[str, int], ...] = ()
    # The rules of all its instances as one function (compile_shape), made with the plan.
    compiled: ShapeCheck | None = None
    # How many individuals it took.
    uses: int = 0
    # Facts for the blocks above the individual: (key, value position or None, holders).
    outer_facts: tuple[tuple[str, int | None, frozenset[str]], ...] = ()
    nir_positions: tuple[int, ...] = ()
    # The blocks above the last establishment it was used under, and each fact's target there.
    targets: tuple[list[BlockInstance], list[tuple[BlockInstance, str, int | None]]] | None = None
    # Per line, in order, for the planned walk (registry/dsn/planned_walk.py): its rubric, how
    # many instances it closes (the next ones in `blocks` order), the instance it opens (-1:
    # none, it continues one).
    rubrics: tuple[str, ...] = ()
    closes: tuple[int, ...] = ()
    opens: tuple[int, ...] = ()
    # What the planned walk's listeners derive from the plan once, each under its own key.
    derived: dict[object, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)
def _line_pattern(spec: RubricSpec) -> tuple[str, int, re.Pattern[str] | None]:
    """A rubric's line as a regex (its value the last group), its number of groups, and the
    rubric's regex when it is applied to the captured value instead (see _UNSAFE)."""
    after: list[tuple[int, re.Pattern[str]]] = []
    piece = re.escape(spec.id) + ",'" + _value_pattern(spec, after, 0)
    return piece, re.compile(piece).groups, (after[0][1] if after else None)


def _value_pattern(spec: RubricSpec, after: list[tuple[int, re.Pattern[str]]], group: int) -> str:
    least = spec.min
    most = _LONGEST if spec.max is None else min(spec.max, _LONGEST)
    if least > most:
        raise NoPlan(spec.id)
    # As the reference path: length first (so no regex runs on a longer value), then allowed
    # values, regex, calendar date, each that applies.
    checks = [f"(?={_CHAR}{{{least},{most}}}{_END})"]
    if spec.values is not None:
        choices = "|".join(re.escape(v) for v in sorted(spec.values, key=len, reverse=True))
        checks.append(f"(?=(?:{choices}){_END})")
    if spec.regex is not None:
        if _UNSAFE.search(spec.regex.pattern):
            after.append((group, spec.regex))
        else:
            checks.append(f"(?=(?:{spec.regex.pattern}){_END})")
    if spec.kind == "Date":
        checks.append(f"(?={_CALENDAR}{_END})")
    return "".join(checks) + f"({_CHAR}{{{least},{most}}}){_END}"


def _root(blocks: list[str]) -> list[BlockInstance]:
    opened: list[BlockInstance] = []
    for block in blocks:
        instance = BlockInstance(block, tuple(i.block for i in opened), [RubricLine(0, "", "")])
        instance.parent = opened[-1] if opened else None
        opened.append(instance)
    return opened


_ABOVE = ["S10.G00.00", "S20.G00.05", "S21.G00.06", "S21.G00.11"]


def build_plan(norm: Norm, rubrics: list[str], in_code: frozenset[str]) -> Plan:
    """The plan of an individual of these rubrics (NoPlan when it must go the reference way)."""
    reader = BlockReader()
    reader.open = _root(_ABOVE)
    outer = set(map(id, reader.open))
    closed: list[BlockInstance] = []
    individuals = 0
    closes: list[int] = []
    opened: list[BlockInstance | None] = []
    for number, rubric in enumerate(rubrics):
        block = rubric[:10]
        spec = norm.rubrics.get(rubric)
        if spec is None or (block in in_code and block != INDIVIDUAL):
            raise NoPlan(rubric)
        before = len(closed)
        closed.extend(reader.feed(RubricLine(number, rubric, "")))
        closes.append(len(closed) - before)
        if reader.faults or reader.detached is not None:
            raise NoPlan(rubric)
        top = reader.open[-1]
        if id(top) in outer:
            raise NoPlan(rubric)  # a block of the establishment or above: not an individual
        opened.append(top if top.lines[0].line == number else None)
        if top.block == INDIVIDUAL and top.lines[0].line == number:
            individuals += 1
    while id(reader.open[-1]) not in outer:
        closed.append(reader.open.pop())
    if any(i.block != INDIVIDUAL and (i.parent is None or id(i.parent) in outer) for i in closed):
        raise NoPlan("a block under the establishment that is not an individual")
    index = {id(instance): position for position, instance in enumerate(closed)}
    parents = []
    for instance in closed:
        chain = []
        parent = instance.parent
        while parent is not None and id(parent) in index:
            chain.append(index[id(parent)])
            parent = parent.parent
        parents.append(tuple(chain))
    after: list[tuple[int, re.Pattern[str]]] = []
    pieces, positions, total = [], [], 0
    for number, rubric in enumerate(rubrics):
        piece, groups, regex = _line_pattern(norm.rubrics[rubric])
        pieces.append(piece)
        # The norm's regexes have groups of their own: each line's value is its piece's last.
        total += groups
        positions.append(total - 1)
        if regex is not None:
            after.append((number, regex))
    own = tuple({line.rubric: line.line for line in i.lines} for i in closed)
    return Plan(
        own=own,
        rubrics=tuple(rubrics),
        closes=tuple(closes),
        opens=tuple(-1 if instance is None else index[id(instance)] for instance in opened),
        nir_positions=tuple(
            position[NIR]
            for block, position in zip((i.block for i in closed), own, strict=True)
            if block == INDIVIDUAL and NIR in position
        ),
        pattern=re.compile("".join(pieces)),
        values=operator.itemgetter(*positions) if len(positions) > 1 else lambda g: (g[0],),
        lines=len(rubrics),
        individuals=individuals,
        blocks=tuple(i.block for i in closed),
        parents=tuple(parents),
        children=tuple(dict(i.children) for i in closed),
        after=tuple(after),
    )


@dataclass(frozen=True, slots=True)
class Where:
    """Where individuals are read: the validation's state they are checked against (read
    only; a clean outcome says what to add to it)."""

    norm: Norm
    controls: ControlSet
    nature: str
    month: tuple[str | None, str | None]
    establishment: BlockInstance
    nirs: set[str]


# A clean outcome: the plan, the facts for the blocks above, the NIRs seen.
Clean = tuple[Plan, list[tuple[BlockInstance, str, str]], list[str]]


class SharedPlans:
    """The plans of the shapes met, per norm version, shared by every validation that is given
    it (a node validating deposits one after another: a plan costs tens of milliseconds, more
    than a small file takes, so only plans kept from file to file let small files take the fast
    path). A plan is a function of its shape and norm version alone (values are checked anew
    for each individual), so sharing it changes no outcome. The time budget counts the time
    spent validating with it (`worked`, added as each validation ends), so a plan is still
    built only within a tenth of that time."""

    def __init__(self) -> None:
        self.plans: dict[tuple[str, bytes], Plan | None] = {}
        # A plan of each shape, whatever its norm version (the planned walk needs its structure
        # only, which no version changes: registry/dsn/reader.py).
        self.shapes: dict[bytes, Plan] = {}
        # How many times each shape was met (by hash), until it has a plan.
        self.sightings: dict[int, int] = {}
        # The size, about, of what listeners of the planned walk keep derived from the plans
        # (Plan.derived: routings, registry/dsn/planned_routes.py, which drops them all when
        # they would pass MAX_DERIVED_BYTES).
        self.derived_bytes = 0
        # Time spent building plans and compiling; time the validations that ended took.
        self.spent = 0.0
        self.worked = 0.0


class IndividualChecker:
    """Checks individuals the fast way for one validation (`check`); keeps the plans of the
    shapes it met, per norm version, in its own SharedPlans or one it is given."""

    def __init__(
        self,
        in_code: frozenset[str],
        forbidden_nirs: frozenset[str],
        *,
        eager: bool = False,
        shared: SharedPlans | None = None,
    ) -> None:
        self.in_code = in_code
        # Eager: every shape gets its plan and compiled rules at once, whatever they cost (the
        # tests compare that with the reference way on small files).
        self.eager = eager
        self.forbidden_nirs = forbidden_nirs
        self.shared = shared if shared is not None else SharedPlans()
        self.plans = self.shared.plans
        # Since when this validation works.
        self.started = time.perf_counter()
        self.last: tuple[str, Plan] | None = None
        self.above: (
            tuple[list[BlockInstance], dict[str, dict[str, str]], dict[str, dict[str, list[str]]]]
            | None
        ) = None

    def finish(self) -> None:
        """The validation ended: its time counts in the shared plans' budget."""
        self.shared.worked += time.perf_counter() - self.started

    def plan(self, controls: ControlSet, text: bytes) -> Plan | None:
        """The plan of this individual's shape with its compiled rules, None when it has none.
        A plan costs tens of milliseconds: a shape gets one from its second individual on,
        within the time budget (`_affordable`), so a small file or a file of ever new shapes
        goes line by line at little extra cost."""
        norm = controls.norm
        assert norm is not None
        key = (norm.version, SHAPE.sub(b"", text))
        if key in self.plans:
            return self.plans[key]
        sightings = self.shared.sightings
        seen = sightings.get(hash(key), 0) + 1
        if len(sightings) < MAX_SIGHTINGS or hash(key) in sightings:
            sightings[hash(key)] = seen
        # It costs what the reference way spends on some hundred individuals: the first few
        # shapes (a file of one shape) get one from their second individual, later ones from
        # their 128th.
        wanted = 2 if len(self.plans) < _FIRST_SHAPES else _LATER_SHAPES
        if len(self.plans) >= MAX_PLANS or not (
            self.eager or (seen >= wanted and self._affordable())
        ):
            return None
        started = time.perf_counter()
        found: Plan | None = None
        rubrics = key[1].decode("iso-8859-1").split("\n")
        if rubrics[-1] == "":
            try:
                found = build_plan(norm, [r.removesuffix("\r") for r in rubrics[:-1]], self.in_code)
            except NoPlan:
                found = None
            if found is not None:
                found.compiled = _compile(found, controls)
                if found.compiled is None:  # a rule fails whatever the values
                    found = None
        self.plans[key] = found
        if found is not None:
            self.shared.shapes[key[1]] = found
        self.shared.spent += time.perf_counter() - started
        return found

    def _affordable(self) -> bool:
        """Whether building a plan fits the time budget: a tenth of the time validation has
        taken so far, this one's and the ended ones' that share the plans (a small file on its
        own never pays for one)."""
        shared = self.shared
        worked = shared.worked + time.perf_counter() - self.started
        return shared.spent + _COST < _SHARE * worked

    def check(self, text: bytes, at: Where) -> Clean | None:
        """When the individual(s) of `text` are clean: the plan, the facts to record in the
        blocks above, the NIRs seen. None when they must go the reference way."""
        decoded = text.decode("iso-8859-1")
        # The last shape first: most individuals of a file have the same.
        plan = self.last[1] if self.last is not None and self.last[0] == at.norm.version else None
        match = plan.pattern.fullmatch(decoded) if plan is not None else None
        if match is None:
            plan = self.plan(at.controls, text)
            match = plan.pattern.fullmatch(decoded) if plan is not None else None
            if plan is None or match is None:
                return None
            self.last = (at.norm.version, plan)
        assert plan is not None and plan.compiled is not None
        values = plan.values(match.groups())
        for group, regex in plan.after:
            if regex.fullmatch(values[group]) is None:
                return None
        counts_ok = plan.counts_ok.get(at.nature)
        if counts_ok is None:
            counts_ok = plan.counts_ok[at.nature] = not any(
                any(True for _ in cardinality_faults(at.norm, block, children, at.nature))
                for block, children in zip(plan.blocks, plan.children, strict=True)
            )
        if not counts_ok:
            return None
        outer, above, gathered = self._above(at.establishment)
        if not plan.compiled(values, above, gathered, at.nature, at.month):
            return None
        seen = [values[position] for position in plan.nir_positions]
        forbidden = self.forbidden_nirs
        if any(nir in forbidden or nir in at.nirs for nir in seen) or len(set(seen)) < len(seen):
            return None
        targets = plan.targets  # read once: validations in other threads may share the plan
        if targets is None or targets[0] is not outer:
            # Which of the blocks above gets each fact: the same for every individual under
            # the same establishment.
            targets = plan.targets = (outer, [
                (instance, key, position)
                for key, position, holders in plan.outer_facts
                for instance in outer if instance.block in holders
            ])  # fmt: skip
        deferred = [
            (instance, key, "" if position is None else values[position])
            for instance, key, position in targets[1]
        ]
        plan.uses += 1
        return plan, deferred, seen

    def _above(
        self, establishment: BlockInstance
    ) -> tuple[list[BlockInstance], dict[str, dict[str, str]], dict[str, dict[str, list[str]]]]:
        """The instances above an individual, their values and their facts (the dicts the
        facts are added to, so that they stay current)."""
        cached = self.above
        if cached is not None and cached[0][0] is establishment:
            return cached
        outer: list[BlockInstance] = []
        instance: BlockInstance | None = establishment
        while instance is not None:
            if instance.facts is None:
                instance.facts = {}
            outer.append(instance)
            instance = instance.parent
        found = (
            outer,
            {i.block: i.values() for i in outer},
            {i.block: i.facts for i in outer if i.facts is not None},
        )
        self.above = found
        return found


class _Placed(ShapeInstance):
    """One instance of a shape, as compile_shape sees it: its rubrics are in the values at known
    positions (`g[k]`), those it lacks are None, and what is below it is known."""

    def __init__(self, plan: Plan, position: int) -> None:
        self.plan = plan
        self.position = position
        self.block = plan.blocks[position]

    def ref(self, compiler: Any, rubric: str) -> tuple[str, bool]:
        plan, me = self.plan, self.position
        blocks, chain, own = plan.blocks, plan.parents[me], plan.own
        block = rubric[:10]
        if block == self.block:
            return _value(own[me].get(rubric)), False
        if block in compiler.scope_ancestors:
            for parent in chain:
                if blocks[parent] == block:
                    return _value(own[parent].get(rubric)), False
            return f"A.get({block!r}, _E).get({rubric!r})", False
        holder = compiler.holder_of(block)
        if holder == self.block:
            at: int | None = me
        else:
            at = next((parent for parent in chain if blocks[parent] == holder), None)
        if at is None:
            return f"FA.get({holder!r}, _E).get({rubric!r})", True
        # The values of the instances below the holder that closed before this one.
        found = [f"g[{own[q][rubric]}]" for q in range(me)
                 if blocks[q] == block and at in plan.parents[q] and rubric in own[q]]  # fmt: skip
        return ("(" + ", ".join(found) + ",)") if found else "()", True

    def count(self, block: str) -> int:
        plan, me = self.plan, self.position
        return sum(1 for q in range(me) if plan.blocks[q] == block and me in plan.parents[q])


def _value(position: int | None) -> str:
    return "None" if position is None else f"g[{position}]"


def _compile(plan: Plan, controls: ControlSet) -> ShapeCheck | None:
    """The plan's rules as one function; also what its instances give the blocks above."""
    outer = []
    for position, block in enumerate(plan.blocks):
        for key, rubric, holders in controls.facts.get(block, ()):
            if rubric is None or rubric in plan.own[position]:
                at = None if rubric is None else plan.own[position][rubric]
                outer.append((key, at, holders))
    plan.outer_facts = tuple(outer)
    return compile_shape(controls, [_Placed(plan, p) for p in range(len(plan.blocks))])


def apply_facts(deferred: list[tuple[BlockInstance, str, str]]) -> None:
    """Records the facts a clean individual gave the blocks above it."""
    for instance, key, value in deferred:
        if instance.facts is None:
            instance.facts = {}
        instance.facts.setdefault(key, []).append(value)


# A line the reader reads as a rubric line (not blank, not too long, nothing outside the charset).
READABLE = re.compile(
    rb"S[0-9]{2}\.G[0-9]{2}\.[0-9]{2}\.[0-9]{3},'[\x20-\x7e\xa0-\xff]{0,%d}'\r?\n"
    % (MAX_LINE_BYTES - 20)
)
# Text read before it is cut into individuals; an individual longer than this goes line by line.
CHUNK = 1 << 20
_LONGEST_PIECE = 8 << 20


def segments(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bytes | None]]:
    """A file cut for the fast path, in order: (text, None), text to read line by line, and
    (text, following), an individual (and what follows it up to the next one) with the first
    line of the next one. Validation and the planned walk (registry/dsn/planned_walk.py) cut
    files alike through it."""
    carry = b""
    at_individual = False  # whether `carry` starts with an individual
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= CHUNK:
            carry, at_individual = yield from _pieces(carry + b"".join(pending), at_individual)
            pending, size = [], 0
    yield from _pieces(carry + b"".join(pending), at_individual, final=True)


def _pieces(
    buffer: bytes, at_individual: bool, final: bool = False
) -> Generator[tuple[bytes, bytes | None], None, tuple[bytes, bool]]:
    """The segments of what can be cut of `buffer`; returns what is left and whether it starts
    with an individual."""
    cut = len(buffer) if final else buffer.rfind(b"\n") + 1
    starts = [m.end() for m in BOUNDARY.finditer(buffer, 0, cut)]
    if at_individual:
        starts.insert(0, 0)
    elif starts:
        yield buffer[: starts[0]], None
    for begin, end in itertools.pairwise(starts):
        yield buffer[begin:end], buffer[end : buffer.find(b"\n", end) + 1]
    if not starts:
        yield buffer[:cut], None
        rest = buffer[cut:]
        return rest[: MAX_LINE_BYTES + 1], False
    last = starts[-1]
    if final or cut - last > _LONGEST_PIECE:
        yield buffer[last:cut], None
        rest = buffer[cut:]
        return rest[: MAX_LINE_BYTES + 1], False
    return buffer[last:], True


def opening_establishment(reader: BlockReader, rubric: str) -> BlockInstance | None:
    """The open establishment under which a line of `rubric` (of S21.G00.30) opens a new
    individual, None when the reading is not at such a point (a fault pending, a misplaced
    block, a sibling after individuals, an open individual that the line continues)."""
    if reader.detached is not None or reader.faults:
        return None
    top = reader.open[-1] if reader.open else None
    if top is not None and top.block == INDIVIDUAL and rubric > top.lines[-1].rubric:
        return None
    # What is open below it closes when an individual opens (its nearest open ancestor).
    for instance in reversed(reader.open):
        if instance.block == "S21.G00.11":
            if any(child > INDIVIDUAL for child in instance.children):
                return None
            return instance
    return None


__all__ = [
    "BOUNDARY", "CHUNK", "MAX_DERIVED_BYTES", "READABLE", "SHAPE", "IndividualChecker", "NoPlan",
    "Plan", "SharedPlans", "apply_facts", "build_plan", "opening_establishment", "segments",
]  # fmt: skip
