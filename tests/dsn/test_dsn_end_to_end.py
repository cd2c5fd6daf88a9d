"""End to end, as separate processes: the backbone (`interops serve --demo-data`), two sample
organisms (`interops organism run`), and a declarant's payroll software using the CLI: a DSN is
deposited, validated, routed, fetched, acknowledged with signed receipts, and the CRMs come back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interops.dsn.v1 import dsn_pb2 as pb

from clients.client import Client
from clients.token_cli import holder_signer
from clients.token_credentials import ChainCredentials
from server.cli.demo_trust import DECLARANT, DECLARANT_PASSWORD

DEPOSIT = "interops.dsn.v1.DepositService"


class Processes:
    """Processes started by a test, stopped at its end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> Path:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            self.running.append(subprocess.Popen(
                [sys.executable, "-m", "clients.cli", *args],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            ))  # fmt: skip
        return log

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clients.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    def stop(self) -> None:
        for process in reversed(self.running):
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for(log: Path, pattern: str, seconds: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{log.name} never printed {pattern!r}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[tuple[Processes, str]]:
    env = {
        **os.environ,
        "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
        "INTEROPS_HTTP_ADDRESS": "127.0.0.1:0",
        "INTEROPS_DATA_DIR": str(tmp_path / "node"),
        "INTEROPS_DATABASE_URL": database_url,
        "INTEROPS_TRACING_EXPORTER": "none",
        "INTEROPS_FEED_POLL_SECONDS": "0.1",
    }
    processes = Processes(env, tmp_path)
    try:
        log = processes.start("backbone", "serve", "--demo-data")
        address = _wait_for(log, r"serving on (\S+)").group(1)
        processes.env["INTEROPS_GRPC_ADDRESS"] = address
        yield processes, address
    finally:
        processes.stop()


def test_a_deposit_flows_to_two_organism_processes_and_their_crms_come_back(
    world: tuple[Processes, str], tmp_path: Path
) -> None:
    processes, address = world
    keys = tmp_path / "node" / "demo-keys"
    for organism in ("URSSAF", "DGFIP"):
        processes.start(organism, "--organism", organism, "--key", str(keys / f"{organism}.pem"),
                        "organism", "run", "--out", str(tmp_path / organism))  # fmt: skip
    # The payroll software: sign in, generate this month's DSN, deposit it.
    processes.env["INTEROPS_PASSWORD"] = DECLARANT_PASSWORD
    holder_key = tmp_path / "declarant.key"  # the key the declarant's chain names
    processes.env["INTEROPS_HOLDER_KEY"] = str(holder_key)
    siret, last, first = DECLARANT
    issued = processes.run("token", "issue", "--declarant", siret, "--last-name", last,
                           "--first-name", first, "--audience", DEPOSIT)  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    dsn = tmp_path / "march.dsn"
    assert processes.run("dsn", "generate", "--out", str(dsn), "--employees", "12").returncode == 0
    submitted = processes.run("--token", token, "dsn", "submit", str(dsn), "--wait")
    assert submitted.returncode == 0, submitted.stderr
    assert "AEE" in submitted.stdout and "ROUTED" in submitted.stdout
    deposit_id = submitted.stdout.split()[0]

    from token_suite.wire import from_text

    chain = ChainCredentials(from_text(token), holder_signer(holder_key))
    with Client(address, credentials=chain) as declarant:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            returns = list(declarant.list_returns(deposit_id))
            if len(returns) == 3:
                break
            time.sleep(0.2)
        assert sorted((r.kind, r.code, r.organism) for r in returns) == [
            (pb.RETURN_KIND_CCO, "", ""),
            (pb.RETURN_KIND_CRM, "60", "URSSAF"),
            (pb.RETURN_KIND_CRM, "92", "DGFIP"),
        ]
        dgfip = next(r for r in returns if r.organism == "DGFIP")
        assert len(dgfip.pas_rates) == 12 and all(rate.rate for rate in dgfip.pas_rates)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = {d.organism: d.state for d in declarant.get_deposit(deposit_id).deliveries}
            if states["URSSAF"] == states["DGFIP"] == pb.DELIVERY_STATE_ACKNOWLEDGED:
                break
            time.sleep(0.2)
    # Acknowledged by the two running organisms; the others wait for theirs.
    assert states == {
        "URSSAF": pb.DELIVERY_STATE_ACKNOWLEDGED, "DGFIP": pb.DELIVERY_STATE_ACKNOWLEDGED,
        "AGIRC-ARRCO": pb.DELIVERY_STATE_PENDING, "PREVOYANCE": pb.DELIVERY_STATE_PENDING,
        "FRANCE-TRAVAIL": pb.DELIVERY_STATE_PENDING, "CNAM": pb.DELIVERY_STATE_PENDING,
    }  # fmt: skip
    # Each organism kept exactly its share; the DGFiP's holds no contribution line.
    (urssaf_share,) = (tmp_path / "URSSAF").iterdir()
    (dgfip_share,) = (tmp_path / "DGFIP").iterdir()
    assert b"S21.G00.81.001" in urssaf_share.read_bytes()
    assert b"S21.G00.81" not in dgfip_share.read_bytes()
    # The CLI follows the returns machine to machine.
    listed = processes.run("--token", token, "dsn", "returns", "--deposit", deposit_id)
    assert listed.returncode == 0 and listed.stdout.count("CRM") == 2
