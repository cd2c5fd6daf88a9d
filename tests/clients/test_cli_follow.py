"""The command line's following modes through a pipe: each line reaches the reader as it is
printed, while the command still runs (`dsn submit --wait`, `dsn watch`, `dsn returns
--follow`), and Ctrl-C ends them quietly (exit status 130, no traceback)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from registry.dsn.synth import DEMO_COMPANY
from registry.trust.declarant_store import DeclarantStore
from tests.running_node import RunningNode

DEPOSIT = "interops.dsn.v1.DepositService"
PASSWORD = "follow pw"


def _command(node: RunningNode, *args: str) -> list[str]:
    return [sys.executable, "-m", "clients.cli", "--address", node.address, *args]


@pytest.fixture(scope="module")
def declarant(node: RunningNode, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """The options that call as a declarant of the demo firm (its chain and holder key). No
    organism has an encryption key here: deposits are validated, never routed."""
    firm = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
    DeclarantStore(node.node.engine).create(
        firm, "Martin", "Camille", PASSWORD, [("dsn.deposit", DEMO_COMPANY.siren)]
    )
    holder_key = tmp_path_factory.mktemp("declarant") / "holder.pem"
    issued = subprocess.run(
        _command(node, "--holder-key", str(holder_key), "token", "issue", "--declarant", firm,
                 "--last-name", "Martin", "--first-name", "Camille", "--audience", DEPOSIT),
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "INTEROPS_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    return ("--token", issued.stdout.strip(), "--holder-key", str(holder_key))


@pytest.fixture(scope="module")
def dsn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dsn") / "march.dsn"
    made = subprocess.run([sys.executable, "-m", "clients.cli", "dsn", "generate", "--out",
                           str(path), "--employees", "2"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return path


def _as_in_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a suite run in the background (a CI job, `make test
    &`) has SIGINT ignored, which its children would inherit, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _follow(node: RunningNode, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(_command(node, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_in_a_terminal)  # noqa: PLW1509  # fmt: skip


def _first_line(process: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """The first line the command printed, read while it still runs."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "nothing came through the pipe while the command ran"
    line = process.stdout.readline()
    assert process.poll() is None, "the command had ended: its lines came at its exit"
    return line


def _interrupted(process: subprocess.Popen[str]) -> str:
    """Ctrl-C: the command ends with 130 and no traceback; its standard error."""
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 130, errors
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors, errors
    return errors


def test_submit_wait_prints_the_receipt_while_it_follows(
    node: RunningNode, declarant: tuple[str, ...], dsn_file: Path
) -> None:
    waiting = _follow(node, *declarant, "dsn", "submit", str(dsn_file), "--wait")
    try:
        first = _first_line(waiting)
        assert "AEE" in first
    finally:
        _interrupted(waiting)
    deposit_id = first.split()[0]
    watching = _follow(node, *declarant, "dsn", "watch", deposit_id)
    try:
        assert _first_line(watching).startswith(deposit_id)
    finally:
        _interrupted(watching)


def test_returns_follow_prints_each_return_as_it_comes(
    node: RunningNode, declarant: tuple[str, ...], dsn_file: Path
) -> None:
    submitted = subprocess.run(
        _command(node, *declarant, "dsn", "submit", str(dsn_file), "--request-id", "follow-2"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    deposit_id = submitted.stdout.split()[0]
    following = _follow(node, *declarant, "dsn", "returns", "--follow")
    try:
        line = _first_line(following)
        assert deposit_id in line or "CCO" in line or "BAN" in line, line
    finally:
        _interrupted(following)
