"""Routing a clean individual taken whole (registry/dsn/planned_walk.py) as an individual of the
same shape was routed before.

Who receives which instance of an employee, and which of its lines, depends on its shape (the
plan), on the values the rules read (conditions, identifiers given and referred to, rubrics
required), on the declaration's nature, on the organisms entitled to its establishment, and on
whether the identifiers it refers to outside itself (an affiliation's adhesion, in its
establishment) were given and to whom. Nothing else: the router's state about an employee is
forgotten when the employee is decided. So for each plan, the first individual with given
deciding values is routed as any other (heard line by line: registry/dsn/routing.py), and what
each organism got of it is kept as a template of the individual's lines; the next individual of
that plan with the same deciding values gets each organism's template filled with its own
values. The ancestors above the individual that a share still lacks are written as routing
writes them, from the share's own state.

An individual whose routing refused anything is not kept (it is heard line by line each time),
nor are rules under which an individual gives an identifier that something outside it refers to
(the router's state would then outlive the individual). tests/dsn/test_planned_routes.py
compares the shares and refusals with the line-by-line walk's on clean, broken and mutated
files.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from registry.dsn.entitlement import INDIVIDUAL, Where
from registry.dsn.individual_segments import MAX_DERIVED_BYTES, SharedPlans
from registry.dsn.reader import BlockInstance, block_ancestors
from registry.dsn.routing import Router, RoutingListener, Share, _ancestor

if TYPE_CHECKING:
    from registry.dsn.planned_walk import PlannedIndividual

# Routings kept per plan and rules (distinct deciding values of one shape); all that is kept
# derived from plans is bounded too (MAX_DERIVED_BYTES).
MAX_ROUTES = 256


@dataclass(frozen=True, slots=True)
class _Template:
    """What one organism gets of an individual: its lines with the values left out, the
    positions of the values to put in, and how many lines."""

    text: str
    values: Callable[[tuple[str, ...]], Any]
    lines: int

    @property
    def size(self) -> int:
        """The bytes it holds, about (its text, its positions)."""
        return len(self.text) + 8 * self.lines + 200

    def fill(self, values: tuple[str, ...]) -> str:
        found = self.values(values)
        return self.text % (found if isinstance(found, tuple) else (found,))


@dataclass(frozen=True, slots=True)
class _Deciding:
    """What decides an individual's routing, for one plan: the positions of the values the
    rules read, and the identifiers referred to outside it (position, target, scope block)."""

    values: Callable[[tuple[str, ...]], Any]
    outside: tuple[tuple[int, str, str], ...]


# Per deciding values, each organism's template.
_Routes = dict[tuple[object, ...], dict[str, _Template]]


def _read_by(where: Where | None) -> set[str]:
    if where is None:
        return set()
    found = {where.rubric} if where.rubric else set()
    for part in where.parts:
        found |= _read_by(part)
    return found


def _inside(block: str) -> bool:
    return block == INDIVIDUAL or INDIVIDUAL in (block_ancestors(block) or ())


class PlannedRoutingListener(RoutingListener):
    """A routing listener that routes planned individuals as kept (see the module's
    docstring), for the planned walk."""

    def __init__(self, router: Router, open_share: Callable[[str], BinaryIO]) -> None:
        super().__init__(router.rules, router.identification, open_share)
        self.key = ("routing", router.memo_key)  # the plan's `derived` entry for these rules
        # Rubrics each block's rules read.
        self.read: dict[str, set[str]] = {}
        for rules in self.rules.values():
            for block, rule in rules.blocks.items():
                self.read.setdefault(block, set()).update(_read_by(rule.where))
        for block, rubrics in self.targets.items():
            self.read.setdefault(block, set()).update(rubrics)
        for block, references in self.references.items():
            self.read.setdefault(block, set()).update(r.rubric for r in references)
        for block, required in self.required.items():
            for item in required:
                self.read.setdefault(block, set()).update(_read_by(item.where), item.rubrics)
        # An identifier given inside an individual and scoped outside it: what the router keeps
        # of it outlives the individual, so no individual's routing is kept.
        self.usable = not any(
            _inside(target[:10]) and not _inside(scope) for target, scope in self.scopes.items()
        )

    def individual(self, individual: PlannedIndividual) -> None:
        """Routes a clean individual taken whole: as kept, or heard line by line (and then
        kept)."""
        self._decide(individual.establishment)  # as its first line's opening does
        routes: _Routes | None = None
        key: tuple[object, ...] = ()
        if self.usable:
            derived = individual.plan.derived
            entry: tuple[_Deciding, _Routes] | None = derived.get(self.key)
            if entry is None:
                entry = derived[self.key] = (self._deciding(individual), {})
            deciding, routes = entry
            key = self._key(deciding, individual)
            kept = routes.get(key)
            if kept is not None and self._write_kept(kept, individual):
                return
        before = self.refusals()
        tail = individual.replay((self,))
        employee = self.employee
        # Closing the individual decides and writes it. The walk would close it at the next
        # line, the next individual's first: a line that opens an instance and faults nothing
        # (planned_walk.py), so nothing this listener hears comes between.
        for instance in tail:
            self.closed(instance)
        if (
            routes is not None and employee is not None and len(routes) < MAX_ROUTES
            and self.refusals() == before
        ):  # fmt: skip
            templates = self._templates(employee, individual)
            if _room(individual.plans, _size(key) + sum(t.size for t in templates.values())):
                routes[key] = templates

    def _deciding(self, individual: PlannedIndividual) -> _Deciding:
        plan = individual.plan
        positions: list[int] = []
        outside: list[tuple[int, str, str]] = []
        for own, block in zip(plan.own, plan.blocks, strict=True):
            positions += sorted(own[r] for r in self.read.get(block, ()) if r in own)
            for reference in self.references.get(block, ()):
                if reference.rubric in own and not _inside(reference.scope):
                    outside.append((own[reference.rubric], reference.target, reference.scope))
        getter: Callable[[tuple[str, ...]], Any] = (
            operator.itemgetter(*positions) if positions else (lambda values: ())
        )
        return _Deciding(getter, tuple(outside))

    def _key(self, deciding: _Deciding, individual: PlannedIndividual) -> tuple[object, ...]:
        values = individual.values
        establishment = individual.establishment
        outside: list[tuple[bool, frozenset[str]] | None] = []
        for position, target, scope_block in deciding.outside:
            value = values[position]
            scope = _ancestor(establishment, scope_block)
            if scope is None:
                outside.append(None)
                continue
            ids = self.entitled_ids.get(id(scope), {})
            outside.append((
                value in self.given_ids.get(id(scope), {}).get(target, {}),
                frozenset(code for code in self.rules
                          if value in ids.get((code, target), ())),
            ))  # fmt: skip
        return (
            self.nature,
            self.decided.get(id(establishment)),
            deciding.values(values),
            tuple(outside),
        )

    def _write_kept(self, kept: dict[str, _Template], individual: PlannedIndividual) -> bool:
        """Writes each organism's template filled with the individual's values, after the
        ancestors its share lacks; False (nothing written) when an ancestor cannot be placed,
        for the line-by-line way to decide."""
        paths = {}
        for code in kept:
            path = self._lacking(self.all_shares[code], individual.establishment)
            if path is None:
                return False
            paths[code] = path
        texts: dict[int, list[str]] = {}
        for code, template in kept.items():
            share = self.all_shares[code]
            self._emit_path(share, paths[code], texts)
            share.write_text(template.fill(individual.values), template.lines)
        return True

    def _templates(
        self, employee: list[BlockInstance], individual: PlannedIndividual
    ) -> dict[str, _Template]:
        """What each organism got of the individual just routed, as templates: routing's own
        writing, into shares that hold each line's position instead of its text."""
        first = individual.first_line
        texts = {id(instance): [f"{line.rubric}\0{line.line - first}" for line in instance.lines]
                 for instance in employee}  # fmt: skip
        outer = set()
        node: BlockInstance | None = individual.establishment
        while node is not None:
            outer.add(id(node))
            node = node.parent
        entitled = self.last_entitled
        scratch: dict[str, _Scratch] = {}
        for instance in employee:
            for code in sorted(entitled[id(instance)]):
                if code not in scratch:
                    scratch[code] = _Scratch(code, _never)
                    scratch[code].emitted = set(outer)
                self._write(scratch[code], self.rules[code], instance, texts)
        templates = {}
        for code, share in scratch.items():
            if not share.pending:
                continue
            pairs = [line.split("\0") for line in share.pending]
            positions = [int(position) for _, position in pairs]
            templates[code] = _Template(
                "".join(f"{rubric},'%s'\r\n" for rubric, _ in pairs),
                operator.itemgetter(*positions),
                len(pairs),
            )
        return templates


def _size(key: tuple[object, ...]) -> int:
    """The bytes a kept routing's key holds, about (the deciding values above all)."""
    size = 200
    for part in key:
        if isinstance(part, tuple):
            size += sum(len(value) + 60 if isinstance(value, str) else 60 for value in part)
        elif isinstance(part, str):
            size += len(part) + 60
    return size


def _room(plans: SharedPlans, size: int) -> bool:
    """Counts `size` more bytes kept against MAX_DERIVED_BYTES; when they would pass it, every
    plan's routings are dropped first (routings kept under rules since replaced would otherwise
    hold the room for good). Unlocked: under the GIL, racing validations at worst count wrong
    by a routing or keep one twice."""
    if plans.derived_bytes + size > MAX_DERIVED_BYTES:
        for plan in list(plans.shapes.values()):
            for name in [name for name in plan.derived if isinstance(name, tuple)
                         and name[0] == "routing"]:  # fmt: skip
                del plan.derived[name]
        plans.derived_bytes = 0
        if size > MAX_DERIVED_BYTES:
            return False
    plans.derived_bytes += size
    return True


def _never(organism: str) -> Any:
    raise AssertionError("a template is never written out")


class _Scratch(Share):
    """A share that only gathers what routing writes to it."""

    def write(self, texts: list[str]) -> None:
        self.pending.extend(texts)
