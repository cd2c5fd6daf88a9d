"""Benchmark: DSN deposits per minute end to end (submit, validate, route, fetch, download,
acknowledge with a signed receipt), 1,000 deposits of 50 employees, on SQLite and PostgreSQL
(PostgreSQL when INTEROPS_TEST_DATABASE_URL names a server).

The baseline, measured in the same run on the same files, is validation alone in this process
(read and check every file, nothing stored): the ratio says what storage, routing, sealing and
the calls cost on top of the norm's checks.

The node runs in its own process; 8 declarant threads deposit and 4 organism threads (one per
organism concerned) fetch and acknowledge.

    python -m bench.dsn_routing [--deposits 1000] [--employees 50]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clients.client import Client
from clients.token_credentials import OrganismCredentials
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.dsn.validation import validate
from registry.kernel.database import open_engine, upgrade
from registry.trust.declarant_store import DeclarantStore
from tests.databases import PG_URL, fresh_database
from tests.running_node import (
    declarant_chain,
    provision_organism,
    provision_routing_encryption_keys,
)
from token_suite.chain import Signer

# Every organism a monthly declaration of the generator concerns.
ORGANISMS = {"URSSAF": "URSSAF", "DGFIP": "DGFIP", "AGIRC-ARRCO": "AGIRC_ARRCO",
             "PREVOYANCE": "OC", "FRANCE-TRAVAIL": "FRANCE_TRAVAIL", "CNAM": "CNAM"}  # fmt: skip
DEPOSIT = "interops.dsn.v1.DepositService"
DELIVERY = "interops.dsn.v1.DeliveryService"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic


def _provision(url: str) -> tuple[dict[str, Signer], dict[str, bytes]]:
    """The organisms' signers, and every routed organism's encryption key (private)."""
    engine = open_engine(url)
    upgrade(engine)
    DeclarantStore(engine).create(FIRM, "Bench", "Mark", "bench",
                                  [("dsn.deposit", DEMO_COMPANY.siren)])  # fmt: skip
    signers = {code: provision_organism(engine, code, kind, ("dsn.deliveries",))
               for code, kind in ORGANISMS.items()}  # fmt: skip
    sealing = provision_routing_encryption_keys(engine)
    engine.dispose()
    return signers, sealing


def _organism_loop(
    address: str, signer: Signer, encryption_key: bytes, expected: int, done: list[int]
) -> None:
    credentials = OrganismCredentials(address, signer, (DELIVERY,))
    with Client(address, credentials=credentials) as client:
        while done[0] < expected:
            batch = client.fetch_deliveries(max_deliveries=50, lease_seconds=120)
            if not batch:
                time.sleep(0.05)
                continue
            for delivery in batch:
                client.download_share(delivery.id, encryption_key)
                client.acknowledge_delivery(delivery, signer)
                done[0] += 1


def _run(backend: str, url: str, files: list[Path], scratch: Path) -> float:
    signers, sealing = _provision(url)
    env = {**os.environ, "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
           "INTEROPS_DATA_DIR": str(scratch / f"node-{backend}"), "INTEROPS_DATABASE_URL": url,
           "INTEROPS_TRACING_EXPORTER": "none", "INTEROPS_FEED_POLL_SECONDS": "0.05",
           "INTEROPS_LOG_LEVEL": "WARNING"}  # fmt: skip
    log = scratch / f"node-{backend}.log"
    with log.open("wb") as out:
        node = subprocess.Popen([sys.executable, "-m", "clients.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        address = ""
        while not address:
            found = re.search(r"serving on (\S+)", log.read_text())
            address = found.group(1) if found else ""
            if node.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.05)
        chain = declarant_chain(address, FIRM, "Bench", "Mark", "bench", audience=[DEPOSIT])
        counters = {code: [0] for code in signers}
        started = time.perf_counter()
        workers = [
            threading.Thread(target=_organism_loop,
                             args=(address, signer, sealing[code], len(files), counters[code]),
                             daemon=True)
            for code, signer in signers.items()
        ]  # fmt: skip
        for worker in workers:
            worker.start()

        def deposit(path: Path) -> None:
            with Client(address, credentials=chain) as client:
                client.submit_deposit(path)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(deposit, files))
        submitted = time.perf_counter() - started
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
    finally:
        node.terminate()
        node.wait(timeout=30)
    rate = len(files) / elapsed * 60
    print(f"{backend}: {len(files)} deposits submitted in {submitted:.1f} s, all acknowledged by "
          f"{len(signers)} organisms in {elapsed:.1f} s: {rate:,.0f} deposits/min")  # fmt: skip
    return rate


def main() -> None:
    """Runs the benchmark and prints its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=1000)
    parser.add_argument("--employees", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        files = []
        for number in range(args.deposits):
            path = scratch / f"dsn-{number}.txt"
            path.write_bytes(b"".join(generate(args.employees, order=number + 1, seed=number)))
            files.append(path)
        started = time.perf_counter()
        for path in files:
            assert validate(io.BytesIO(path.read_bytes())).conformant
        floor = len(files) / (time.perf_counter() - started) * 60
        print(f"baseline: validation alone, {floor:,.0f} deposits/min")
        backends = ["sqlite"] + (["postgresql"] if PG_URL else [])
        for backend in backends:
            with fresh_database(backend, scratch) as url:
                rate = _run(backend, url, files, scratch)
            print(f"{backend}: ratio end to end / validation alone: {rate / floor:.2f}")
        if not PG_URL:
            print("postgresql: skipped (set INTEROPS_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
