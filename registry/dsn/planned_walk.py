"""A file's one walk (registry/dsn/reader.py `Walker`), its clean individuals taken whole.

Validation's fast path (registry/dsn/individual_segments.py) builds a plan for each shape of
individual (the same rubrics in the same order): its block instances, their parents, the line
each opens on and the instances each line closes, and a regular expression that matches the
individual's text only when every line is one the reader reads. Where an individual's text
matches a plan of its shape, reading it line by line would give exactly the plan's instances,
whatever its values, so this walk does not: it cuts the file as validation does (`segments`),
reads the rest line by line, and shows each planned individual to its listeners whole
(`BlockListener.individual`). A listener that knows what it wants of an individual (relations,
the deposit's scan, routing) takes the values where the plan says; any other hears it line by
line (`PlannedIndividual.replay`), the very events the line-by-line walk gives.
tests/dsn/test_planned_walk.py compares both walks, event for event, on clean, broken and
mutated files.

The walk uses the plans validation built (`SharedPlans.shapes`); it never builds one. An
individual is taken whole only where validation's fast path would take it: the reading at an
open establishment that nothing follows yet, the next individual's first line one the reader
reads (that line is what closes this individual's instances, and the walk closes them at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from registry.dsn.individual_segments import (
    INDIVIDUAL,
    READABLE,
    SHAPE,
    Plan,
    SharedPlans,
    opening_establishment,
    segments,
)
from registry.dsn.reader import (
    BlockInstance,
    BlockListener,
    RubricLine,
    RubricReader,
    Walker,
    text_lines,
)


@dataclass(slots=True)
class PlannedIndividual:
    """One clean individual as the planned walk shows it: its plan, each line's value in order,
    the number of its first line, the establishment it opens under, the blocks open above it
    (the establishment's ancestors and the establishment), and the plans the plan is kept in."""

    plan: Plan
    values: tuple[str, ...]
    first_line: int
    establishment: BlockInstance
    outer: tuple[str, ...]
    plans: SharedPlans  # where the plan is kept

    def replay(self, listeners: Sequence[BlockListener]) -> list[BlockInstance]:
        """Shows the individual line by line, as the walk would: per line, the instances it
        closes, the one it opens, the line. Returns its instances still open at its end,
        innermost first: the line after it closes them (`Walker.tail`)."""
        plan, values = self.plan, self.values
        closes, opens, blocks = plan.closes, plan.opens, plan.blocks
        open_: list[BlockInstance] = []
        number = self.first_line
        for position, rubric in enumerate(plan.rubrics):
            item = RubricLine(number + position, rubric, values[position])
            opened = opens[position]
            if opened < 0:  # the line continues the instance open last (and closes nothing)
                open_[-1].lines.append(item)
                for listener in listeners:
                    listener.line(item)
                continue
            # As the reader: the instances the line closes leave the open path, the new one
            # counts among its parent's children, and then they are heard.
            closed = [open_.pop() for _ in range(closes[position])]
            block = blocks[opened]
            if open_:
                parent = open_[-1]
                ancestors = (*parent.ancestors, parent.block)
                parent.children[block] = parent.children.get(block, 0) + 1
            else:  # the individual (the walk counted it among the establishment's children)
                parent, ancestors = self.establishment, self.outer
            instance = BlockInstance(block, ancestors, [item])
            instance.parent = parent
            open_.append(instance)
            for listener in listeners:
                for done in closed:
                    listener.closed(done)
                listener.opened(instance)
                listener.line(item)
        return open_[::-1]


def walk_planned(
    chunks: Iterable[bytes], plans: SharedPlans | None, *listeners: BlockListener
) -> None:
    """Reads a file once and shows it to every listener, as `walk` does, its clean individuals
    taken whole where `plans` has their shape's plan (see the module's docstring)."""
    _PlannedWalk(plans, listeners).run(chunks)


class _PlannedWalk:
    def __init__(self, plans: SharedPlans | None, listeners: Sequence[BlockListener]) -> None:
        self.walker = Walker(*listeners)
        self.lines = RubricReader()
        self.listeners = listeners
        self.whole = [listener for listener in listeners
                      if type(listener).individual is not BlockListener.individual]  # fmt: skip
        self.replaying = [listener for listener in listeners if listener not in self.whole]
        self.plans = plans if plans is not None else SharedPlans()
        self.shapes = self.plans.shapes
        self.last: Plan | None = None  # the plan met last: most individuals have the same

    def run(self, chunks: Iterable[bytes]) -> None:
        read, push = self.lines.read, self.walker.push
        for text, following in segments(chunks):
            planned = None if following is None else self._planned(text, following)
            if planned is not None:
                self._take(*planned)
                continue
            for raw in text_lines(text):
                item = read(raw)
                if item is not None:
                    push(item)
        self.walker.finish()

    def _planned(
        self, text: bytes, following: bytes
    ) -> tuple[Plan, tuple[str, ...], BlockInstance] | None:
        """The individual's plan, values and establishment, when it can be taken whole."""
        if not self.shapes:
            return None
        # At an open establishment nothing follows yet, and the next individual's first line
        # one the reader reads: that line opens the next individual under the establishment,
        # faulting nothing, and closes this one's instances (`_take` closes them at once).
        establishment = opening_establishment(self.walker.reader, text[:14].decode("iso-8859-1"))
        if establishment is None or not READABLE.fullmatch(following):
            return None
        decoded = text.decode("iso-8859-1")
        plan = self.last
        match = plan.pattern.fullmatch(decoded) if plan is not None else None
        if match is None:
            plan = self.shapes.get(SHAPE.sub(b"", text))
            match = plan.pattern.fullmatch(decoded) if plan is not None else None
        # One individual (a plan of several would count them on the establishment ahead of
        # their opening).
        if plan is None or match is None or plan.individuals != 1:
            return None
        self.last = plan
        return plan, plan.values(match.groups()), establishment

    def _take(self, plan: Plan, values: tuple[str, ...], establishment: BlockInstance) -> None:
        """Shows an individual whole, or line by line to the listeners that want it so."""
        walker, reader, lines = self.walker, self.walker.reader, self.lines
        # What the individual's first line does: it counts among the establishment's children,
        # and what is open below the establishment closes.
        children = establishment.children
        children[INDIVIDUAL] = children.get(INDIVIDUAL, 0) + 1
        tail = walker.tail  # the individual before, if it was planned too
        walker.tail = None
        depth = reader.open.index(establishment) + 1
        for listener in self.listeners:
            if tail is not None and listener in tail[0]:
                for instance in tail[1]:
                    listener.closed(instance)
            for instance in reversed(reader.open[depth:]):
                listener.closed(instance)
        del reader.open[depth:]
        outer = tuple(i.block for i in reader.open)
        individual = PlannedIndividual(
            plan, values, lines.number + 1, establishment, outer, self.plans
        )
        lines.number += plan.lines
        if self.replaying:
            walker.tail = (self.replaying, individual.replay(self.replaying))
        for listener in self.whole:
            listener.individual(individual)
