"""Benchmark: importing a synthetic Sirene stock (StockEtablissement layout) into SQLite and,
when INTEROPS_TEST_DATABASE_URL is set, PostgreSQL.

Prints seconds and rows per second, the ratio to a bare `for line in f: line.split(",")` loop
over the same file, and on PostgreSQL the ratio to a bare COPY of the same file in the same run
(PostgreSQL's own CSV parser into a plain table of text columns, no index, no check: the floor
of getting those rows into the server), and the load average before and after the import (the
machine has two cores: anything else running shows in the figure). Target: 3 million
establishments in under 30 s on PostgreSQL.

    python -m bench.registry_import [--establishments 3000000] [--backend postgresql]
        [--stock-dir DIR]  # keeps the generated stock there for the next run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine

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


def bare_copy(engine: Engine, path: Path) -> float:
    """Seconds of a bare COPY of the file into a plain table of text columns (PostgreSQL)."""
    with path.open(encoding="utf-8") as file:
        columns = file.readline().strip().split(",")
    definition = ", ".join(f'"{name}" text' for name in columns)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE bench_bare_copy ({definition})")
        connection.exec_driver_sql("CHECKPOINT")  # both start with the WAL written out
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        start = time.perf_counter()
        with (
            path.open("rb") as file,
            cursor.copy("COPY bench_bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
        ):
            while block := file.read(1 << 20):
                copy.write(block)
        raw.commit()
        elapsed = time.perf_counter() - start
        cursor.execute("DROP TABLE bench_bare_copy")
        raw.commit()
        cursor.execute("CHECKPOINT")
    finally:
        raw.close()
    return elapsed


def run(backend: str, directory: Path, path: Path, rows: int, floor: float) -> None:
    """Imports the file into a fresh database of the backend and prints the figures."""
    with fresh_database(backend, directory) as url:
        engine = open_engine(url)
        upgrade(engine)
        copy_seconds = bare_copy(engine, path) if backend == "postgresql" else 0.0
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        outcome = import_stock(engine, path)
        elapsed = time.perf_counter() - start
        engine.dispose()
    assert outcome.lines_applied == rows, outcome
    rate = rows / elapsed
    compared = (
        f"; bare COPY of the same file {copy_seconds:.1f} s ({rows / copy_seconds:,.0f} rows/s), "
        f"import/COPY time ratio {elapsed / copy_seconds:.2f}"
        if copy_seconds
        else ""
    )
    load = f"{load_before:.2f} before, {' / '.join(f'{v:.2f}' for v in os.getloadavg())} after"
    print(
        f"{backend:>10}: {rows:,} establishments in {elapsed:.1f} s = {rate:,.0f} rows/s; "
        f"ratio to bare line loop {rate / floor:.3f}{compared}; "
        f"3M would take {PORTAL_SIZE / rate:.0f} s (target < 30 s on PostgreSQL); "
        f"load average (1 min; 1/5/15 min) {load}"
    )


def main() -> None:
    """Generates the stock file, measures the floor, then each backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--establishments", type=int, default=PORTAL_SIZE)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--stock-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path, rows = _stock(args.stock_dir or directory / "stock", args.establishments)
        floor = bare_loop(path)
        print(f"bare line loop: {floor:,.0f} lines/s over {rows:,} lines")
        if args.backend in ("sqlite", "both"):
            run("sqlite", directory, path, rows, floor)
        if args.backend in ("postgresql", "both"):
            if os.environ.get("INTEROPS_TEST_DATABASE_URL"):
                run("postgresql", directory, path, rows, floor)
            else:
                print("postgresql: skipped (set INTEROPS_TEST_DATABASE_URL)")


def _stock(directory: Path, establishments: int) -> tuple[Path, int]:
    """The StockEtablissement file of that size in the directory (written unless there) and
    its number of establishments."""
    marker = directory / f"establishments-{establishments}"
    path = directory / "StockEtablissement.csv"
    if marker.exists() and path.exists():
        rows = int(marker.read_text())
    else:
        for stale in directory.glob("establishments-*"):  # another size's
            stale.unlink()
        started = time.perf_counter()
        rows = len(write_stock(directory, establishments, seed=1).sirets)
        marker.write_text(str(rows))
        print(f"stock generated in {time.perf_counter() - started:.0f} s")
    print(f"stock of {rows:,} establishments ({path.stat().st_size / 1e6:,.0f} MB)")
    return path, rows


if __name__ == "__main__":
    main()
