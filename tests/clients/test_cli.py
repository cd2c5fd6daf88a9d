"""The `interops` command line against a running node, as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from registry.rcd.sirene_synth import StockFiles
from tests.running_node import RunningNode


def interops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_import_then_get_and_validate(node: RunningNode, stock: StockFiles) -> None:
    for path in (stock.companies, stock.establishments):
        done = interops("--address", node.address, *node.cli_auth, "registry", "import", str(path))
        assert done.returncode == 0, done.stderr
        assert "0 rejected" in done.stdout
        assert "import" in done.stderr  # the progress bars
    shown = interops("--address", node.address, *node.cli_auth, "registry", "get", stock.sirets[0])
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["siret"] == stock.sirets[0]
    company = interops(
        "--address", node.address, *node.cli_auth, "registry", "get", stock.sirens[0]
    )
    assert json.loads(company.stdout)["name"] == "CABINET DUPONT EXPERTISE COMPTABLE"
    valid = interops(
        "--address", node.address, *node.cli_auth, "registry", "validate", stock.sirets[0]
    )
    assert valid.returncode == 0 and "valid" in valid.stdout
    wrong = interops(
        "--address", node.address, *node.cli_auth, "registry", "validate", "10000000900018"
    )
    assert wrong.returncode == 1 and "SIRET_PROBLEM_BAD_CHECKSUM" in wrong.stdout


def test_errors_are_told_plainly_with_an_exit_status(node: RunningNode, tmp_path: Path) -> None:
    bad = interops("--address", node.address, *node.cli_auth, "registry", "get", "1234567890123X")
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT" in bad.stderr and "siret" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = interops(
        "--address", node.address, *node.cli_auth, "registry", "import", str(tmp_path / "none.csv")
    )
    assert missing.returncode == 2 and "no file" in missing.stderr
    unreachable = interops("--address", "127.0.0.1:9", "registry", "get", "73282932000074")
    assert unreachable.returncode == 2 and "cannot reach" in unreachable.stderr
    anonymous = interops("--address", node.address, "registry", "get", "73282932000074")
    assert anonymous.returncode == 1 and "UNAUTHENTICATED TOKEN_MISSING" in anonymous.stderr


def test_half_an_organism_s_credentials_is_refused_not_dropped(node: RunningNode) -> None:
    organism, key = node.cli_auth[1], node.cli_auth[3]
    for half in (("--organism", organism), ("--key", key)):
        done = interops("--address", node.address, *half, "registry", "get", "73282932000074")
        assert done.returncode == 2 and "--organism and --key go together" in done.stderr


def test_the_audit_filter_does_not_overwrite_who_calls(node: RunningNode) -> None:
    """`interops --organism A --key K audit list --organism B` calls as A, for B's records."""
    from clients.cli import parser

    args = parser().parse_args(["--organism", "OPERATOR", "--key", "k.pem", "audit", "list",
                                "--organism", "URSSAF"])  # fmt: skip
    assert (args.organism, args.of_organism) == ("OPERATOR", "URSSAF")
    done = interops("--address", node.address, *node.cli_auth, "audit", "list",
                    "--organism", "URSSAF")  # fmt: skip
    assert "TOKEN_MISSING" not in done.stderr  # it called with the operator's credentials


def test_db_upgrade_migrates_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "clients.cli", "db", "upgrade"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"INTEROPS_DATABASE_URL": url, "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "revision 0024" in done.stdout
