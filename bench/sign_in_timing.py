"""Benchmark: how long DeclarantStore.sign_in takes to refuse, per case, as a ratio of a wrong
password for an account that exists, measured in the same run: an unknown identity and an
inactive account (wrong password) should take as long (one scrypt check each, ratio about 1.00);
a wait told for an unknown identity as long as one told for a known identity (no check at all).

The store runs on an SQLite file, its limits in the same database; each case is measured in
many rounds interleaved with the others', and its median kept. The identities' counts are
cleared between rounds (not timed), so that no wait interferes with the refusals measured.

    python -m bench.sign_in_timing [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, update

from registry.kernel.database import open_engine, upgrade
from registry.trust.declarant_store import DeclarantStore, SignInRefused, identity_digest
from registry.trust.schema import declarants
from registry.trust.sign_in_limits import SignInLimits

SIRET = "73282932000074"
PASSWORD = "bench password"
SOURCE = "192.0.2.1"
WAITS_A_ROUND = 20


def _refused_in(store: DeclarantStore, last_name: str, password: str) -> float:
    """Seconds one refused sign-in took."""
    started = time.perf_counter()
    try:
        store.sign_in(SIRET, last_name, "Bench", password, source=SOURCE)
    except SignInRefused:
        return time.perf_counter() - started
    raise AssertionError("the sign-in was not refused")


def _throttle(limits: SignInLimits, identity: bytes) -> None:
    """A stranger's guesses all day long from the bench's address: the identity now waits the
    longest wait there."""
    clock, guesses = time.time() - 20_000, 0
    while guesses < 30:
        wait = limits.admit(identity, SOURCE, now=clock)
        clock, guesses = (clock + wait, guesses) if wait else (clock, guesses + 1)
    assert limits.admit(identity, SOURCE) == 0.0  # once more, now


def _accounts(engine: Engine, store: DeclarantStore) -> None:
    for last_name in ("Active", "Inactive", "Throttled"):
        store.create(SIRET, last_name, "Bench", PASSWORD)
    with engine.begin() as connection:
        connection.execute(
            update(declarants)
            .where(declarants.c.identity_digest == identity_digest(SIRET, "Inactive", "Bench"))
            .values(status="CANDIDATE")
        )


def main() -> None:
    """Measures each case and prints its median and its ratio to the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        engine = open_engine(f"sqlite:///{Path(directory) / 'bench.db'}")
        upgrade(engine)
        limits = SignInLimits(engine, source_attempts=1_000_000)
        store = DeclarantStore(engine, limits)
        _accounts(engine, store)
        for last_name in ("Throttled", "Throttled-Unknown"):
            _throttle(limits, identity_digest(SIRET, last_name, "Bench"))
        cases = {
            "wrong password (baseline)": ("Active", "a guess"),
            "unknown identity": ("Unknown", PASSWORD),
            "inactive, wrong password": ("Inactive", "a guess"),
            "wait, known identity (baseline)": ("Throttled", PASSWORD),
            "wait, unknown identity": ("Throttled-Unknown", PASSWORD),
        }
        times: dict[str, list[float]] = {case: [] for case in cases}
        for turn in range(args.rounds * WAITS_A_ROUND):
            # A wait is quick: many of them a round, in turns; a check once a round.
            for case, (last_name, password) in cases.items():
                waits = case.startswith("wait")
                if not waits and turn % WAITS_A_ROUND:
                    continue
                times[case].append(_refused_in(store, last_name, password))
                if not waits:
                    limits.clear(identity_digest(SIRET, last_name, "Bench"))
        engine.dispose()
    medians = {case: statistics.median(spent) for case, spent in times.items()}
    print(f"{'case':34} {'median ms':>10} {'ratio':>7}")
    for case, median in medians.items():
        baseline = medians[
            "wait, known identity (baseline)" if case.startswith("wait")
            else "wrong password (baseline)"
        ]  # fmt: skip
        print(f"{case:34} {median * 1000:10.2f} {median / baseline:7.2f}")


if __name__ == "__main__":
    main()
