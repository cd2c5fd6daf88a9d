"""Benchmark: a creditor's extraction of its SEPA mandates (registry/mandate/store.py `extract`,
written to a sealed file as the service does), in mandates per second, against a bare query of
the same rows in the same run (the rows fetched, nothing done with them).

The extraction opens each IBAN (AES-256-GCM), writes a CSV line, and seals the file chunk by
chunk; the ratio says what that costs over reading the rows. The mandates (default one million,
one creditor, IBANs sealed with a random data key) are inserted straight into a fresh database:
SQLite in a temporary directory, or the PostgreSQL server of --database (a database of its own,
created and dropped).

    python -m bench.mandate_extract [--mandates 1000000] [--database postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, insert, select

from registry.kernel.blob_store import FileBlobs
from registry.kernel.database import open_engine, upgrade
from registry.kernel.sealing import SealedWriter, seal
from registry.mandate.schema import mandates
from registry.mandate.store import ACKNOWLEDGED, EXTRACT_BATCH, MandateStore, _associated

CREDITOR = "URSSAF"
BATCH = 20_000


def _fill(engine: Engine, store: MandateStore, count: int) -> None:
    """`count` acknowledged mandates of CREDITOR, each with its own sealed IBAN."""
    for start in range(0, count, BATCH):
        rows = []
        for number in range(start, min(start + BATCH, count)):
            reference = f"RUM-{number:09d}"
            iban = f"FR76300060000{number:014d}"
            rows.append({
                "creditor": CREDITOR, "reference": reference, "debtor": f"{number:09d}00017",
                "debtor_siren": f"{number:09d}",
                "iban_sealed": seal(store.aead, iban.encode(), _associated(CREDITOR, reference)),
                "bic": "AGRIFRPPXXX", "scheme": 1,
                # One in ten signed long ago and never used: lapsed, marked so in the file.
                "signed_on": "2019-01-15" if number % 10 == 0 else "2026-01-15",
                "state": ACKNOWLEDGED, "created_at": 1, "acknowledged_at": 2, "revoked_at": 0,
                "uses": number % 12, "last_declaration": "", "request_key": None,
                "last_used_on": "2026-03-01" if number % 12 and number % 10 else "",
            })  # fmt: skip
        with engine.begin() as connection:
            connection.execute(insert(mandates), rows)


def _bare(engine: Engine) -> int:
    """The same rows, in the same order, fetched and dropped."""
    query = (
        select(*mandates.c)
        .where(mandates.c.creditor == CREDITOR)
        .order_by(mandates.c.reference)
        .execution_options(yield_per=EXTRACT_BATCH)
    )
    count = 0
    with engine.connect() as connection:
        for rows in connection.execute(query).partitions():
            count += len(rows)
    return count


def _extract(store: MandateStore, key: bytes, directory: Path) -> int:
    """The extraction as the service runs it: CSV lines, sealed to a file; the count its
    progress reported."""
    done = [0]
    with SealedWriter(FileBlobs(directory).writer("bench.csv.sealed"), key) as out:
        for piece in store.extract(CREDITOR, lambda count: done.__setitem__(0, count)):
            out.write(piece)
    return done[0]


def _timed(run: object) -> tuple[int, float]:
    started = time.perf_counter()
    count = run()  # type: ignore[operator]
    return int(count), time.perf_counter() - started


def main() -> None:
    """Fills, then measures each way twice (the better of two), and prints the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mandates", type=int, default=1_000_000)
    parser.add_argument("--database", default="", help="a PostgreSQL server URL (default: "
                        "SQLite in a temporary directory)")  # fmt: skip
    args = parser.parse_args()
    backend = "postgresql" if args.database else "sqlite"
    if args.database:  # read by tests.databases when imported
        os.environ["INTEROPS_TEST_DATABASE_URL"] = args.database
    from tests.databases import fresh_database

    with tempfile.TemporaryDirectory() as scratch, fresh_database(backend, Path(scratch)) as url:
        engine = open_engine(url)
        upgrade(engine)
        key = os.urandom(32)
        store = MandateStore(engine, key)
        started = time.perf_counter()
        _fill(engine, store, args.mandates)
        print(f"{args.mandates:,} mandates inserted on {backend} in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        bare = min((_timed(lambda: _bare(engine)) for _ in range(2)), key=lambda r: r[1])
        extracted = min(
            (_timed(lambda: _extract(store, key, Path(scratch))) for _ in range(2)),
            key=lambda r: r[1],
        )
        assert bare[0] == extracted[0] == args.mandates
        print(f"bare query:  {bare[0] / bare[1]:>12,.0f} mandates/s ({bare[1]:.2f} s)")
        print(f"extraction:  {extracted[0] / extracted[1]:>12,.0f} mandates/s "
              f"({extracted[1]:.2f} s, IBANs opened, CSV, file sealed)")  # fmt: skip
        print(f"ratio: the extraction takes {extracted[1] / bare[1]:.2f}x the bare query")
        engine.dispose()


if __name__ == "__main__":
    main()
