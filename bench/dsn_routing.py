"""Benchmark: DSN deposits per minute end to end (submit, validate, route, lease, download,
acknowledge with a signed receipt), 1,000 deposits of 50 employees, on SQLite and PostgreSQL
(PostgreSQL when INTEROPS_TEST_DATABASE_URL names a server).

The baseline, measured in the same run on the same files, is validation alone in this process
(read and check every file, nothing stored): the ratio says what storage, routing, sealing and
the calls cost on top of the norm's checks. Each file validated on its own never pays for the
fast path's plans (a 50-employee file takes less time than a plan costs); a node keeps them from
deposit to deposit, so the baseline is also given with plans kept, and the ratio to both.

Where the time goes, per deposit: the CPU of the nodes' processes, of their reading workers, of
the clients (this process) and of the database's server processes, and the database
transactions (PostgreSQL); the wall is whichever of them fills the machine's cores first.

Each node runs in its own process; DECLARANTS threads deposit and one thread per organism
concerned (six) and node leases its deliveries with their shares and acknowledges them by
the batch. With `--nodes 2` (PostgreSQL), two nodes share the database and the data volume,
deposits and organisms' calls alternate between them, and the run reports how many deposits
were validated or routed more than once (claimed twice, or given two CCOs): duplicated work,
which must be 0.

With `--companies N`, the deposits declare N companies in turn (all sent by one firm) instead of
one establishment (whose recordings, one at a time, are the worst case for its locks; the first
deposit of each company records its employees, so N > 1 is not cheaper at first).

    python -m bench.dsn_routing [--deposits 1000] [--employees 50] [--nodes 1|2]
                                [--companies 1] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import func, select, text

from clients.client import Client
from clients.dsn_calls import open_stored_share
from clients.token_credentials import OrganismCredentials
from registry.dsn.individual_segments import SharedPlans
from registry.dsn.schema import deposit_returns, deposits
from registry.dsn.synth import DEMO_COMPANY, Company, company, generate
from registry.dsn.validation import validate
from registry.kernel.database import open_engine, upgrade
from registry.rcd.sirene_synth import siren_at, siret_of
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
# Declarants depositing at once: the peak's deposits come from thousands of declarants; with 8,
# each waiting for its answer before the next, the submissions' own latency capped the rate.
DECLARANTS = 16
# An organism leases up to LEASE deliveries at a time, and waits POLL_SECONDS before leasing
# again when it found fewer (as an organism's system polls: not a call per deposit routed).
LEASE = 20
POLL_SECONDS = 0.25


def _declared(number: int, companies: int) -> Company:
    """The company the number-th deposit declares: DEMO_COMPANY, then others, in turn, all sent
    by the firm FIRM."""
    if number % companies == 0:
        return DEMO_COMPANY
    return company(siret_of(siren_at(1 + number % companies), 1), FIRM)


def _provision(url: str, companies: int) -> tuple[dict[str, Signer], dict[str, bytes]]:
    """The organisms' signers, and every routed organism's encryption key (private)."""
    engine = open_engine(url)
    upgrade(engine)
    DeclarantStore(engine).create(FIRM, "Bench", "Mark", "bench", [
        ("dsn.deposit", _declared(number, companies).siren) for number in range(companies)
    ])  # fmt: skip
    signers = {code: provision_organism(engine, code, kind, ("dsn.deliveries",))
               for code, kind in ORGANISMS.items()}  # fmt: skip
    sealing = provision_routing_encryption_keys(engine)
    engine.dispose()
    return signers, sealing


class _Acknowledged:
    """How many deliveries each organism has acknowledged, over all its threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, organism: str, count: int) -> None:
        with self.lock:
            self.counts[organism] += count

    def of(self, organism: str) -> int:
        with self.lock:
            return self.counts[organism]


def _organism_loop(
    address: str,
    code: str,
    signer: Signer,
    encryption_key: bytes,
    expected: int,
    done: _Acknowledged,
) -> None:
    """An organism's system: leases its deliveries LEASE at a time with their shares (those that
    do not fit in the lease's 3 MiB downloaded), opens each share, and acknowledges the batch
    in one call with receipts over what it opened; it polls again at once after a full lease,
    after POLL_SECONDS else."""
    credentials = OrganismCredentials(address, signer, (DELIVERY,))
    with Client(address, credentials=credentials) as client:
        while done.of(code) < expected:
            batch = client.fetch_shares(max_deliveries=LEASE, lease_seconds=120)
            if not batch:  # none routed yet: a few polls a second
                time.sleep(POLL_SECONDS)
                continue
            received = []
            for delivery, content in batch:
                stored = client.download_delivery(delivery.id) if content is None else content
                share = open_stored_share(stored, delivery.id, encryption_key)
                received.append((delivery, hashlib.sha256(share).digest()))
            client.acknowledge_deliveries(received, signer)
            done.add(code, len(received))
            if len(batch) < LEASE:  # it took all there was: it comes back for more later
                time.sleep(POLL_SECONDS)


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process (Linux: /proc): pid -> (parent pid, name, CPU seconds used so far)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return found


def _backends(url: str) -> tuple[set[int], int]:
    """The PostgreSQL server processes serving the database of `url`, and how many
    transactions it has committed or rolled back so far (none and 0 for SQLite)."""
    if not url.startswith("postgresql"):
        return set(), 0
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            pids = set(connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                     " AND pid <> pg_backend_pid()")
            ).scalars())  # fmt: skip
            connection.execute(text("SELECT pg_stat_force_next_flush()"))
            transactions = connection.execute(
                text("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                     " WHERE datname = current_database()")
            ).scalar_one()  # fmt: skip
        return pids, int(transactions)
    finally:
        engine.dispose()


def _cpu(nodes: list[int], backends: set[int]) -> dict[str, float]:
    """CPU seconds used so far by the nodes, by their worker processes, by this process (the
    declarants' and organisms' clients) and by the PostgreSQL processes serving the nodes (the
    backends of their connections; not the server's shared writers)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    node_cpu = sum(table[pid][2] for pid in nodes if pid in table)
    workers, stack = 0.0, [child for pid in nodes for child in children.get(pid, ())]
    while stack:
        pid = stack.pop()
        workers += table[pid][2] if pid in table else 0.0
        stack.extend(children.get(pid, ()))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    postgres = sum(table[pid][2] for pid in backends if pid in table)
    return {"nodes": node_cpu, "their reading workers": workers,
            "clients": usage.ru_utime + usage.ru_stime, "postgresql": postgres}  # fmt: skip


class _Node:
    """A node in its own process (`clients.cli serve`), on a port the system chooses."""

    def __init__(self, url: str, data_dir: Path, log: Path) -> None:
        env = {**os.environ, "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
               "INTEROPS_DATA_DIR": str(data_dir), "INTEROPS_DATABASE_URL": url,
               "INTEROPS_TRACING_EXPORTER": "none",
               "INTEROPS_LOG_LEVEL": "WARNING", "INTEROPS_HTTP_ADDRESS": "off"}  # fmt: skip
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clients.cli", "serve"], env=env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.address = ""

    def wait_serving(self) -> str:
        while not self.address:
            found = re.search(r"serving on (\S+)", self.log.read_text())
            self.address = found.group(1) if found else ""
            if self.process.poll() is not None:
                raise RuntimeError(self.log.read_text())
            time.sleep(0.05)
        return self.address

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        # What went wrong on the node (its log at WARNING), counted, the first shown.
        faults = [line for line in self.log.read_text().splitlines()
                  if " WARNING " in line or " ERROR " in line]  # fmt: skip
        if faults:
            print(f"  node log: {len(faults)} warnings or errors, the first: {faults[0][:300]}")


def _duplicated(url: str) -> tuple[int, int]:
    """(deposits claimed more than once, deposits with more than one CCO or BAN): work done
    twice, each 0 when every deposit was validated and routed once."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            claimed = connection.execute(
                select(func.count()).select_from(deposits).where(deposits.c.claims > 1)
            ).scalar_one()
            reports = (
                select(deposit_returns.c.deposit_id)
                .where(deposit_returns.c.kind.in_(("CCO", "BAN")))
                .group_by(deposit_returns.c.deposit_id)
                .having(func.count() > 1)
                .subquery()
            )
            twice = connection.execute(select(func.count()).select_from(reports)).scalar_one()
            holders = connection.execute(
                select(deposits.c.claimed_by, func.count()).group_by(deposits.c.claimed_by)
            ).all()
    finally:
        engine.dispose()
    print("  deposits per node: " + ", ".join(str(count) for _, count in sorted(holders)))
    return int(claimed), int(twice)


def _run(
    backend: str, url: str, files: list[Path], scratch: Path, nodes: int, companies: int
) -> float:
    signers, sealing = _provision(url, companies)
    volume = scratch / f"node-{backend}-{nodes}"  # one data volume, shared by the nodes
    with ExitStack() as stack:
        started_nodes = []
        for number in range(nodes):
            node = _Node(url, volume, scratch / f"node-{backend}-{nodes}-{number}.log")
            stack.callback(node.stop)
            started_nodes.append(node)
        addresses = [node.wait_serving() for node in started_nodes]
        chains = [declarant_chain(address, FIRM, "Bench", "Mark", "bench", audience=[DEPOSIT])
                  for address in addresses]  # fmt: skip
        done = _Acknowledged()
        pids = [node.process.pid for node in started_nodes]
        # The database's backends now and at the end (connections opened later had used 0).
        backends, transactions = _backends(url)
        cpu_before = _cpu(pids, backends)
        started = time.perf_counter()
        workers = [
            threading.Thread(target=_organism_loop,
                             args=(address, code, signer, sealing[code], len(files), done),
                             daemon=True)
            for code, signer in signers.items() for address in addresses
        ]  # fmt: skip
        for worker in workers:
            worker.start()

        # Each declarant's software keeps its channel to each node (as payroll software does),
        # rather than connecting again for every deposit.
        local = threading.local()
        opened: list[Client] = []
        opened_lock = threading.Lock()

        def deposit(number: int) -> None:
            which = number % nodes
            clients = getattr(local, "clients", None)
            if clients is None:
                clients = local.clients = [
                    Client(address, credentials=chain)
                    for address, chain in zip(addresses, chains, strict=True)
                ]
                with opened_lock:
                    opened.extend(clients)
            clients[which].submit_deposit(files[number])

        try:
            with ThreadPoolExecutor(DECLARANTS) as pool:
                list(pool.map(deposit, range(len(files))))
        finally:
            for client in opened:
                client.close()
        submitted = time.perf_counter() - started
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        later, transactions_after = _backends(url)
        backends |= later
        cpu_after = _cpu(pids, backends)
    rate = len(files) / elapsed * 60
    print(f"{backend}, {nodes} node(s): {len(files)} deposits submitted in {submitted:.1f} s, "
          f"all acknowledged by {len(signers)} organisms in {elapsed:.1f} s: "
          f"{rate:,.0f} deposits/min")  # fmt: skip
    spent = {part: (cpu_after[part] - cpu_before[part]) / len(files) * 1000 for part in cpu_after}
    cores = os.cpu_count() or 1
    print("  CPU per deposit: " + ", ".join(f"{part} {ms:.0f} ms" for part, ms in spent.items())
          + f"; the machine's {cores} cores gave {elapsed * cores / len(files) * 1000:.0f} ms"
          " each")  # fmt: skip
    if transactions_after:
        time.sleep(11)  # idle backends report their counts within 10 s
        transactions_after = _backends(url)[1]
        print(f"  database transactions per deposit: "
              f"{(transactions_after - transactions) / len(files):.1f}")  # fmt: skip
    claimed, twice = _duplicated(url)
    print(f"  duplicated work: {claimed} deposits claimed more than once, {twice} with more "
          "than one CCO/BAN")  # fmt: skip
    return rate


def main() -> None:
    """Runs the benchmark and prints its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=1000)
    parser.add_argument("--employees", type=int, default=50)
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--companies", type=int, default=1,
                        help="the deposits declare this many companies in turn, all sent by one "
                             "firm (1: every deposit for one establishment, the worst case for "
                             "its locks; the national peak is many companies)")  # fmt: skip
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default=None,
                        help="one backend (default: SQLite, and PostgreSQL when set)")  # fmt: skip
    args = parser.parse_args()
    backends = [args.backend] if args.backend else ["sqlite"] + (["postgresql"] if PG_URL else [])
    if args.nodes > 1:  # SQLite is one node's database
        backends = [backend for backend in backends if backend == "postgresql"]
    if ("postgresql" in backends and not PG_URL) or not backends:
        sys.exit("PostgreSQL is needed: set INTEROPS_TEST_DATABASE_URL")
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        files = []
        for number in range(args.deposits):
            path = scratch / f"dsn-{number}.txt"
            declared = _declared(number, args.companies)
            path.write_bytes(b"".join(
                generate(args.employees, order=number + 1, seed=number, declared=declared)
            ))  # fmt: skip
            files.append(path)
        started = time.perf_counter()
        for path in files:
            assert validate(io.BytesIO(path.read_bytes())).conformant
        floor = len(files) / (time.perf_counter() - started) * 60
        plans = SharedPlans()
        started = time.perf_counter()
        for path in files:
            assert validate(io.BytesIO(path.read_bytes()), plans).conformant
        kept = len(files) / (time.perf_counter() - started) * 60
        print(f"baseline: validation alone, {floor:,.0f} deposits/min each file on its own "
              f"(with the fast path's plans kept from file to file, as a node keeps them: "
              f"{kept:,.0f})")  # fmt: skip
        for backend in backends:
            with fresh_database(backend, scratch) as url:
                rate = _run(backend, url, files, scratch, args.nodes, args.companies)
            print(f"{backend}: ratio end to end / validation alone: {rate / floor:.2f} "
                  f"({rate / kept:.2f} with plans kept)")  # fmt: skip
        if not PG_URL:
            print("postgresql: skipped (set INTEROPS_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
