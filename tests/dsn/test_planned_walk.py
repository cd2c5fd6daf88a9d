"""The planned walk (registry/dsn/planned_walk.py) shows every listener what the line-by-line walk
shows it: on clean files, every rule's examples, each broken variant and files mutated at random
(with the plans of the clean file's shapes at hand, so that a mutated individual meets a plan of
its former shape), a listener that hears individuals line by line records the same events,
instance for instance; and the listeners that take individuals whole (relations, the deposit's
scan) find what they find on the line-by-line walk."""

from __future__ import annotations

import random
from typing import Any

import pytest

from registry.dsn.individual_segments import SharedPlans
from registry.dsn.planned_walk import PlannedIndividual, walk_planned
from registry.dsn.reader import Anomaly, BlockInstance, BlockListener, RubricLine, split_lines, walk
from registry.dsn.revealed_relations import RelationCollector
from registry.dsn.scan import DepositScan
from registry.dsn.synth import BROKEN, broken, generate
from registry.dsn.synth_variants import apply
from registry.dsn.validation import _Validation
from tests.dsn.test_dsn_fast_path import EXAMPLES, _mutated


class Recorder(BlockListener):
    """Every event, with what each instance holds when it is heard."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.seen: dict[int, int] = {}
        self.kept: list[BlockInstance] = []  # so that no id is reused

    def _number(self, instance: BlockInstance | None) -> int | None:
        if instance is None:
            return None
        if id(instance) not in self.seen:
            self.seen[id(instance)] = len(self.seen)
            self.kept.append(instance)
        return self.seen[id(instance)]

    def _state(self, instance: BlockInstance) -> tuple[Any, ...]:
        return (
            self._number(instance), instance.block, instance.ancestors,
            self._number(instance.parent), dict(instance.children), instance.out_of_order,
            [(i.line, i.rubric, i.value, i.problem, i.column) for i in instance.lines],
            dict(instance.parent.children) if instance.parent is not None else None,
        )  # fmt: skip

    def fault(self, fault: Anomaly) -> None:
        self.events.append(("fault", fault))

    def opened(self, instance: BlockInstance) -> None:
        self.events.append(("opened", *self._state(instance)))

    def closed(self, instance: BlockInstance) -> None:
        self.events.append(("closed", *self._state(instance)))

    def line(self, item: RubricLine) -> None:
        self.events.append(("line", item.line, item.rubric, item.value, item.problem))

    def end(self) -> None:
        self.events.append(("end",))


class Counting(BlockListener):
    """Counts the individuals it is shown whole (and hears nothing of them line by line)."""

    def __init__(self) -> None:
        self.whole = 0

    def individual(self, individual: PlannedIndividual) -> None:
        self.whole += 1


def _public(scan: DepositScan) -> dict[str, Any]:
    return {name: value for name, value in vars(scan).items() if not name.startswith("_")}


def _plans(*files: bytes) -> SharedPlans:
    plans = SharedPlans()
    for data in files:
        _Validation(eager=True, plans=plans).run([data])
    return plans


def _same(data: bytes, plans: SharedPlans, chunk: int = 0) -> int:
    """Both walks give the same events, relations and scan; returns how many individuals the
    planned walk took whole."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    expected, relations, scan = Recorder(), RelationCollector(), DepositScan()
    walk(split_lines(pieces), expected, relations, scan)
    found, planned_relations, planned_scan = Recorder(), RelationCollector(), DepositScan()
    counting = Counting()
    walk_planned(pieces, plans, found, planned_relations, counting, planned_scan)
    assert found.events == expected.events
    assert planned_relations.relations == relations.relations
    assert _public(planned_scan) == _public(scan)
    return counting.whole


def test_a_clean_file_is_walked_alike_and_its_individuals_taken_whole() -> None:
    data = b"".join(generate(40))
    plans = _plans(data)
    # every individual but the last (what follows it is the footer, not an individual)
    assert _same(data, plans) == 39
    assert _same(data, plans, chunk=97) == 39
    assert _same(data, SharedPlans()) == 0  # no plan: line by line


# Each base file's plans, kept from one example to the next (as a worker keeps them).
_BASES: dict[str, SharedPlans] = {}


@pytest.mark.parametrize(("name", "base", "edits"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_each_rule_example_is_walked_alike(name: str, base: str, edits: Any) -> None:
    data = apply(base, edits)
    plans = _BASES.get(base) or _BASES.setdefault(base, _plans(apply(base, [])))
    _Validation(eager=True, plans=plans).run([data])
    _same(data, plans)


@pytest.mark.parametrize("variant", BROKEN)
def test_each_broken_variant_is_walked_alike(variant: str) -> None:
    data = broken(variant, employees=6)
    _same(data, _plans(b"".join(generate(6)), data), chunk=97)


def test_files_mutated_at_random_are_walked_alike() -> None:
    rng = random.Random(21)
    whole = 0
    for nature in ("01", "04", "07"):
        lines = list(generate(8 if nature == "01" else 3, nature=nature))
        plans = _plans(b"".join(lines))
        for _ in range(80):
            whole += _same(_mutated(rng, lines), plans, chunk=rng.choice([0, 53, 4096]))
    assert whole > 400  # the mutated files' intact individuals were taken whole
