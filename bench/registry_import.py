"""Benchmark: importing a synthetic Sirene stock (StockEtablissement layout) into SQLite and,
when INTEROPS_TEST_DATABASE_URL is set, PostgreSQL.

Prints rows per second, the ratio to a bare `for line in f: line.split(",")` loop over the same
file measured in the same run, and the time 3 million establishments (the portal's size) would
take at that rate. Target: 3 million in under 60 s on PostgreSQL.

    python -m bench.registry_import [--establishments 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from registry.kernel.database import open_engine, upgrade
from registry.rcd.sirene_import import import_stock
from registry.rcd.sirene_synth import write_stock
from tests.databases import fresh_database

PORTAL_SIZE = 3_000_000


def bare_loop(path: Path) -> float:
    """Lines per second of the floor: reading and splitting, nothing else."""
    start = time.perf_counter()
    count = 0
    with path.open(encoding="utf-8") as file:
        for line in file:
            line.split(",")
            count += 1
    return count / (time.perf_counter() - start)


def run(backend: str, directory: Path, path: Path, rows: int, floor: float) -> None:
    """Imports the file into a fresh database of the backend and prints the figures."""
    with fresh_database(backend, directory) as url:
        engine = open_engine(url)
        upgrade(engine)
        start = time.perf_counter()
        outcome = import_stock(engine, path)
        elapsed = time.perf_counter() - start
        engine.dispose()
    assert outcome.lines_applied == rows, outcome
    rate = rows / elapsed
    print(
        f"{backend:>10}: {rows} establishments in {elapsed:.1f} s = {rate:,.0f} rows/s; "
        f"ratio to bare line loop {rate / floor:.3f}; "
        f"3M would take {PORTAL_SIZE / rate:.0f} s (target < 60 s on PostgreSQL)"
    )


def main() -> None:
    """Generates the stock file, measures the floor, then each backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--establishments", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        files = write_stock(directory / "stock", args.establishments, seed=1)
        rows = len(files.sirets)
        floor = bare_loop(files.establishments)
        print(f"bare line loop: {floor:,.0f} lines/s over {rows} lines")
        run("sqlite", directory, files.establishments, rows, floor)
        if os.environ.get("INTEROPS_TEST_DATABASE_URL"):
            run("postgresql", directory, files.establishments, rows, floor)
        else:
            print("postgresql: skipped (set INTEROPS_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
