"""What a deposit's reading finds: validation's report, the relations the file reveals and each
organism's share, read from the deposit's plaintext by the node's pipeline
(server/dsn/pipeline.py), in the node's process or in a worker process (`read_whole`).

Two readings of the same bytes by the same reader: validation reads with its fast path
(registry/dsn/validation.py `validate`, which tests/dsn/test_dsn_fast_path.py proves equal to
the line-by-line walk), then relations and routing hear one walk, which takes whole the clean
individuals whose shape validation planned (registry/dsn/planned_walk.py, proven equal to the
line-by-line walk; routing routes them from its kept routings: registry/dsn/planned_routes.py). The
fast path needs plans that cost tens of milliseconds each, more than a small deposit takes to
validate: `plans` are kept from one deposit to the next, which is what lets a node's 50-employee
deposits take it (validating each on its own, they never would). A shape's plan does not depend
on the file it was met in, so keeping them changes no outcome.

The report is the one the pipeline records: validation's anomalies, the router's refusals, and a
blocking anomaly when the establishments read are not those the deposit's rights were checked on.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from registry.dsn.individual_segments import SharedPlans
from registry.dsn.planned_routes import PlannedRoutingListener
from registry.dsn.planned_walk import walk_planned
from registry.dsn.reader import Anomaly, BlockListener
from registry.dsn.revealed_relations import RelationCollector, Relations
from registry.dsn.routing import Router
from registry.dsn.validation import Report, validate


@dataclass(frozen=True, slots=True)
class ReadShare:
    """One organism's share as routing wrote it: its plaintext's size and SHA-256, and the
    plaintext itself when it was read whole (`read_whole`), else None (it went to its stream)."""

    organism: str
    size: int
    sha256: bytes
    data: bytes | None = None


@dataclass(slots=True)
class DepositReading:
    """What one reading of a deposit found."""

    report: Report
    relations: Relations
    # The organisms concerned, in the rules' order.
    shares: list[ReadShare]


def read_deposit(
    chunks: Callable[[], Iterable[bytes]],
    sirets: Collection[str] | Callable[[], Collection[str]],
    router: Router,
    plans: SharedPlans | None,
    open_share: Callable[[str], BinaryIO],
    *also: BlockListener,
) -> DepositReading:
    """Reads the deposit whose plaintext `chunks()` gives (called twice: once for validation,
    once for relations and routing). `open_share(organism)` gives the stream an organism's share
    is written to, for the organisms concerned only; `sirets` are the establishments the
    deposit's rights were checked on (or what gives them once the walk is over); `also` hear
    the same walk (a deposit's scan, as it arrives: registry/dsn/scan.py)."""
    report = validate(chunks(), plans)
    collector = RelationCollector()
    routing = PlannedRoutingListener(router, open_share)
    walk_planned(chunks(), plans, *also, collector, routing)
    for anomaly in routing.anomalies:
        report.add(anomaly)
    report.blocking += routing.refusals_not_kept
    taken_for = set(sirets() if callable(sirets) else sirets)
    read = {siret for declaration in report.declarations for siret in declaration.sirets}
    if read != taken_for:  # the deposit's rights were checked on `sirets`
        report.add(Anomaly(
            1, "S21.G00.11.001", "INTEROPS-DEPOSIT-SIRETS", True,
            "the establishments read now are not those the deposit was taken for",
        ))  # fmt: skip
    report.anomalies.sort(key=lambda anomaly: anomaly.line)
    shares = [ReadShare(share.organism, share.size, share.digest.digest())
              for share in routing.shares]  # fmt: skip
    return DepositReading(report, collector.relations, shares)


# A worker process's plans, kept from one deposit to the next (see the module's docstring); its
# scans take them too (registry/dsn/scan.py `scan_whole`).
WORKER_PLANS = SharedPlans()


def read_whole(
    data: bytes,
    sirets: Collection[str] | Callable[[], Collection[str]],
    router: Router,
    *also: BlockListener,
) -> DepositReading:
    """`read_deposit` of a plaintext held whole, each share's plaintext returned with it: what a
    worker process runs (its arguments and result cross the process boundary)."""
    written: dict[str, io.BytesIO] = {}

    def open_share(organism: str) -> BinaryIO:
        return written.setdefault(organism, io.BytesIO())

    reading = read_deposit(lambda: (data,), sirets, router, WORKER_PLANS, open_share, *also)
    reading.shares = [
        ReadShare(share.organism, share.size, share.sha256, written[share.organism].getvalue())
        for share in reading.shares
    ]
    return reading
