"""A deposit's reading as the pipeline does it now (registry/dsn/deposit_reading.py: validation's
fast path with plans kept from deposit to deposit, then one walk for relations and routing, in a
worker process or streamed) finds what the one walk heard by validator, relations and router
together found: the same report anomaly for anomaly, the same relations, the same shares byte
for byte; on clean files, broken variants and files mutated at random, read one after another
with the same plans as a node reads them; and a deposit scanned and read at once as it arrives
finds what its scan alone and that reading find. And a worker process killed does not lose a
reading."""

from __future__ import annotations

import io
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from registry.dsn.deposit_reading import DepositReading, read_deposit, read_whole
from registry.dsn.individual_segments import SharedPlans
from registry.dsn.reader import Anomaly, split_lines, walk
from registry.dsn.revealed_relations import RelationCollector, Relations
from registry.dsn.routing import Router, load_rules
from registry.dsn.scan import DepositScan, scan_and_read_whole, scan_whole
from registry.dsn.synth import BROKEN, broken, generate
from registry.dsn.validation import Validator, _Validation, validate
from server.dsn import reading_pool
from tests.dsn.test_dsn_fast_path import _mutated

ROUTER = Router(load_rules().values())


def _one_walk(
    data: bytes, sirets: Collection[str]
) -> tuple[dict[str, object], Relations, dict[str, bytes]]:
    """The pipeline's reading before: one walk heard by the three steps."""
    written: dict[str, io.BytesIO] = {}

    def open_share(organism: str) -> BinaryIO:
        return written.setdefault(organism, io.BytesIO())

    validator, collector = Validator(), RelationCollector()
    routing = ROUTER.listener(open_share)
    walk(split_lines([data]), validator, collector, routing)
    report = validator.report
    for anomaly in routing.anomalies:
        report.add(anomaly)
    report.blocking += routing.refusals_not_kept
    read = {siret for declaration in report.declarations for siret in declaration.sirets}
    if read != set(sirets):
        report.add(Anomaly(
            1, "S21.G00.11.001", "INTEROPS-DEPOSIT-SIRETS", True,
            "the establishments read now are not those the deposit was taken for",
        ))  # fmt: skip
    report.anomalies.sort(key=lambda anomaly: anomaly.line)
    shares = {share.organism: written[share.organism].getvalue() for share in routing.shares}
    return report.as_dict(), collector.relations, shares


def _streamed(data: bytes, sirets: Collection[str], plans: SharedPlans) -> DepositReading:
    written: dict[str, io.BytesIO] = {}

    def open_share(organism: str) -> BinaryIO:
        return written.setdefault(organism, io.BytesIO())

    reading = read_deposit(lambda: iter([data[:4000], data[4000:]]), sirets, ROUTER, plans,
                           open_share)  # fmt: skip
    reading.shares = [
        type(share)(share.organism, share.size, share.sha256, written[share.organism].getvalue())
        for share in reading.shares
    ]
    return reading


def _warmed() -> SharedPlans:
    """Plans a node would have built by now for the generator's shapes (a plan waits until the
    time validation took pays for it)."""
    plans = SharedPlans()
    for nature in ("01", "04", "07"):
        _Validation(eager=True, plans=plans).run([b"".join(generate(3, nature=nature))])
    return plans


def _same(data: bytes, plans: SharedPlans, sirets: Collection[str] | None = None) -> None:
    if sirets is None:  # the establishments the deposit declares: its rights were checked on them
        report = validate([data])
        sirets = {siret for declaration in report.declarations for siret in declaration.sirets}
    expected = _one_walk(data, sirets)
    for reading in (read_whole(data, sirets, ROUTER), _streamed(data, sirets, plans)):
        shares = {share.organism: share.data for share in reading.shares}
        assert (reading.report.as_dict(), reading.relations, shares) == expected
    # Scanned and read at once as it arrives: the scan's own findings, and the reading on the
    # establishments the scan found.
    scanned, at_once = scan_and_read_whole(data, ROUTER)
    alone = scan_whole(data)
    assert _facts(scanned) == _facts(alone)
    assert _facts(pickle.loads(pickle.dumps(scanned))) == _facts(alone)  # as a worker sends it
    assert at_once is not None
    shares = {share.organism: share.data for share in at_once.shares}
    assert (at_once.report.as_dict(), at_once.relations, shares) == _one_walk(data, alone.sirets)


def _facts(scan: DepositScan) -> tuple[object, ...]:
    return (scan.versions, scan.nature, scan.type, scan.month, scan.sirets, scan.lines,
            scan.starts_with_rubric, scan.too_many_sirets, scan.ambiguity,
            scan.emitters)  # fmt: skip


def test_clean_deposits_read_one_after_another_are_read_as_the_one_walk() -> None:
    plans = _warmed()
    for number in range(12):
        _same(b"".join(generate(1 + number * 4, order=number + 1, seed=number)), plans)
    for nature in ("04", "07"):
        _same(b"".join(generate(1, nature=nature)), plans)
    # the plans were kept and used: the later deposits' individuals took the fast path
    assert any(plan is not None and plan.uses > 0 for plan in plans.plans.values())


def test_broken_and_mutated_deposits_are_read_as_the_one_walk() -> None:
    plans = _warmed()
    for variant in BROKEN:
        _same(broken(variant, employees=6), plans)
    rng = random.Random(21)
    lines = list(generate(8))
    for _ in range(40):
        _same(_mutated(rng, lines), plans)


def test_establishments_other_than_those_taken_for_are_refused_alike() -> None:
    _same(b"".join(generate(5)), SharedPlans(), sirets={"12345678900011"})


def test_plans_kept_from_deposit_to_deposit_take_small_deposits_fast() -> None:
    """On its own a 20-employee file never pays for a plan; a node's deposits share theirs."""
    plans = SharedPlans()
    files = [b"".join(generate(20, order=n + 1, seed=n)) for n in range(100)]
    for data in files:
        assert validate([data], plans).conformant
    used = [plan for plan in plans.plans.values() if plan is not None]
    assert len(used) == 1 and used[0].uses > 0
    assert plans.spent < 0.1 * plans.worked  # within the budget: a tenth of validation's time
    for data in files[:3]:
        alone = SharedPlans()
        validate([data], alone)
        assert alone.plans == {}


def test_a_worker_killed_loses_no_reading_and_its_pool_is_replaced() -> None:
    data = b"".join(generate(10))
    sirets = {s for d in validate([data]).declarations for s in d.sirets}
    expected = _one_walk(data, sirets)

    def found(reading: DepositReading) -> tuple[dict[str, object], Relations, dict[str, bytes]]:
        shares = {share.organism: share.data or b"" for share in reading.shares}
        return reading.report.as_dict(), reading.relations, shares

    assert found(reading_pool.read_in_worker(2, data, sirets, ROUTER)) == expected
    pool = reading_pool._Shared.pool
    assert pool is not None
    for process in list(pool._processes.values()):  # killed under the node
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    assert found(reading_pool.read_in_worker(2, data, sirets, ROUTER)) == expected
    assert reading_pool._Shared.pool is not pool  # replaced for the next reading
    assert found(reading_pool.read_in_worker(2, data, sirets, ROUTER)) == expected
    assert reading_pool._Shared.pool is not None and reading_pool._Shared.pool is not pool


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie, ended but not yet reaped, does not)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 -- read at once
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_worker_ends_when_its_node_is_killed(tmp_path: Path) -> None:
    # A node killed outright (SIGKILL: no shutdown) must not leave its reading worker behind,
    # waiting forever on a queue it holds both ends of. (The killed node's resource tracker
    # then removes, and reports on its stderr, the semaphores of the node's pool: kept in a
    # file, shown only if the node does not start.)
    errors = tmp_path / "node.stderr"
    with errors.open("w") as stderr:
        node = subprocess.Popen(
            [sys.executable, "-c",
             "import os, time\n"
             "from server.dsn import reading_pool\n"
             "print(reading_pool._the_pool(1).submit(os.getpid).result(), flush=True)\n"
             "time.sleep(600)\n"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        assert node.stdout is not None
        started = node.stdout.readline()
        assert started.strip().isdigit(), errors.read_text()
        worker = int(started)
        assert _running(worker)
    finally:
        node.kill()
        node.wait()
    deadline = time.monotonic() + 30  # ends within a second or so; a loaded machine is slow
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(worker)
