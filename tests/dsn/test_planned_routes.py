"""A deposit read with plans (validation's fast path, the planned walk, planned individuals routed
from kept routings: registry/dsn/planned_routes.py) gives what the reading line by line gives:
the same report (routing's refusals included), relations and shares, byte for byte, on scenario
files of every nature (with and without lots, with an OC missing), rule examples, broken
variants and files mutated at random. One router and one set of plans read every file in turn,
as a node's worker does, so routings kept from one file meet the next: a mutated individual
whose shape was routed before must not be routed as its former self."""

from __future__ import annotations

import io
import pickle
import random
from typing import Any

import pytest

from registry.dsn import planned_routes
from registry.dsn.deposit_reading import DepositReading, read_deposit
from registry.dsn.entitlement import load_rules
from registry.dsn.individual_segments import SharedPlans
from registry.dsn.reader import BlockListener
from registry.dsn.routing import Router
from registry.dsn.synth import BROKEN, broken, generate
from registry.dsn.synth_scenario import NATURES, OCS, scenario_file
from registry.dsn.synth_variants import apply
from registry.dsn.validation import _Validation
from tests.dsn.test_dsn_fast_path import EXAMPLES, _mutated
from tests.dsn.test_planned_walk import Counting

ROUTER = Router(load_rules().values())


def _read(
    data: bytes, plans: SharedPlans | None, *also: BlockListener
) -> tuple[DepositReading, dict[str, bytes]]:
    written: dict[str, io.BytesIO] = {}
    reading = read_deposit(
        lambda: (data,), lambda: (), ROUTER, plans,
        lambda organism: written.setdefault(organism, io.BytesIO()), *also,
    )  # fmt: skip
    return reading, {organism: out.getvalue() for organism, out in written.items()}


def _outcome(reading: DepositReading, written: dict[str, bytes]) -> tuple[Any, ...]:
    return reading.report.as_dict(), reading.relations, reading.shares, written


class Corpus:
    """Reads files with one router and one set of plans, as a worker does."""

    def __init__(self) -> None:
        self.plans = SharedPlans()
        self.planned = 0

    def same(self, data: bytes, *, plan: bool = True) -> None:
        if plan:  # every shape of the file gets its plan (a node plans within a time budget)
            _Validation(eager=True, plans=self.plans).run([data])
        expected = _outcome(*_read(data, None))
        counting = Counting()
        assert _outcome(*_read(data, self.plans, counting)) == expected
        self.planned += counting.whole

    def kept(self) -> int:
        """How many routings are kept (each served its first individual line by line)."""
        return sum(len(entry[1]) for plan in self.plans.shapes.values()
                   for key, entry in plan.derived.items()
                   if isinstance(key, tuple) and key[0] == "routing")  # fmt: skip


def test_scenario_files_of_every_nature_are_routed_alike() -> None:
    corpus = Corpus()
    for nature in NATURES:
        for lot in (False, True):
            for ocs in (OCS, OCS[1:]):
                for seed in range(3):
                    scenario = scenario_file(nature, employees=14, seed=seed, lot=lot, ocs=ocs)
                    data = b"".join(scenario.lines())
                    corpus.same(data)
    assert corpus.planned > 2 * corpus.kept() > 0


def test_rule_examples_and_broken_variants_are_routed_alike() -> None:
    corpus = Corpus()
    corpus.same(b"".join(generate(6)))
    for _, base, edits in EXAMPLES:
        corpus.same(apply(base, edits), plan=False)  # the clean file's plans, met by broken data
    for variant in BROKEN:
        corpus.same(broken(variant, employees=6), plan=False)


def test_files_mutated_at_random_are_routed_alike() -> None:
    rng = random.Random(22)
    corpus = Corpus()
    for nature in ("01", "04", "09"):
        base = b"".join(scenario_file(nature, employees=10, seed=nature == "09").lines())
        corpus.same(base)
        lines = base.splitlines(keepends=True)
        for _ in range(120):
            corpus.same(_mutated(rng, lines), plan=False)
    assert corpus.planned > 2 * corpus.kept() > 0


def test_routings_kept_stay_within_their_bound_and_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past MAX_DERIVED_BYTES every kept routing is dropped (and kept anew): the outcomes stay
    the line-by-line reading's, and what is counted stays within the bound."""
    monkeypatch.setattr(planned_routes, "MAX_DERIVED_BYTES", 60_000)
    corpus = Corpus()
    for seed in range(6):
        corpus.same(b"".join(scenario_file("01", employees=14, seed=seed).lines()))
        assert corpus.plans.derived_bytes <= 60_000
    assert 0 < corpus.kept() < corpus.planned


def test_a_router_sent_again_is_the_one_the_receiving_process_keeps() -> None:
    """A router goes with every deposit sent to a reading worker: pickled once, unpickled once
    per process, under the same memo_key (so its kept routings are found again); another
    router's rules are another's."""
    received = pickle.loads(pickle.dumps(ROUTER))
    assert pickle.loads(pickle.dumps(ROUTER)) is received
    assert received.memo_key == ROUTER.memo_key and received.rules == ROUTER.rules
    other = Router(list(load_rules().values())[:2])
    assert pickle.loads(pickle.dumps(other)).rules.keys() == other.rules.keys()
    assert other.memo_key != ROUTER.memo_key
