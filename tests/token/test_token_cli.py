"""`interops keys`, `directory`, `declarant` and `token` as an operator and a user type them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.running_node import RunningNode

REGISTRY = "interops.registry.v1.RegistryService"


def interops(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env},
    )  # fmt: skip


def test_an_operator_publishes_an_organism_that_then_calls_the_registry(
    node: RunningNode, database_url: str, tmp_path: Path
) -> None:
    on_db = {"INTEROPS_DATABASE_URL": database_url, "INTEROPS_DATA_DIR": str(tmp_path)}
    key_file = tmp_path / "acme.pem"
    generated = interops("keys", "generate", "--out", str(key_file))
    assert generated.returncode == 0 and "key id:     ed25519:" in generated.stdout
    again = interops("keys", "generate", "--out", str(key_file))
    assert again.returncode == 2 and "not overwriting" in again.stderr
    bad = interops("directory", "add-organism", "ACME", "--name", "Acme", "--kind", "BANK", **on_db)
    assert bad.returncode == 1 and "unknown kind" in bad.stderr
    for command in (
        ("add-organism", "ACME", "--name", "Acme mutuelle", "--kind", "OC"),
        ("add-key", "ACME", "--key-file", str(key_file)),
        ("grant", "ACME", "registry.read"),
    ):
        done = interops("directory", *command, **on_db)
        assert done.returncode == 0, done.stderr
    shown = interops("directory", "show", **on_db)
    assert "ACME  Acme mutuelle" in shown.stdout and "in use" in shown.stdout
    as_acme = ("--address", node.address, "--organism", "ACME", "--key", str(key_file))
    found = interops(*as_acme, "registry", "validate", "73282932000074")
    assert found.returncode in (0, 1) and "73282932000074" in found.stdout, found.stderr
    key_id = generated.stdout.split("key id:")[1].split()[0]
    retired = interops("directory", "retire-key", key_id, **on_db)
    assert retired.returncode == 0 and "retired" in retired.stdout
    assert "retired" in interops("directory", "show", **on_db).stdout


def test_a_declarant_issues_delegates_verifies_and_inspects_a_chain(
    node: RunningNode, database_url: str, tmp_path: Path
) -> None:
    on_db = {"INTEROPS_DATABASE_URL": database_url, "INTEROPS_PASSWORD": "s3cret-enough"}
    added = interops("declarant", "add", "44306184100047", "--last-name", "Durand",
                     "--first-name", "Léa", "--siren", "443061841", **on_db)  # fmt: skip
    assert added.returncode == 0, added.stderr
    at = ("--address", node.address)
    issued = interops(*at, "token", "issue", "--declarant", "44306184100047", "--last-name",
                      "DURAND", "--first-name", "Lea", "--audience", REGISTRY, "--max-hops", "2",
                      "--purpose", "sign-in", INTEROPS_PASSWORD="s3cret-enough")  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    node.organism("CNAV-CLI", "CNAV")
    handed = interops(*at, "token", "delegate", token, "--to", "CNAV-CLI", "--profile",
                      "application", "--purpose", "pension file")  # fmt: skip
    assert handed.returncode == 0, handed.stderr
    token_file = tmp_path / "token.txt"
    token_file.write_text(handed.stdout)
    verified = interops(*at, "token", "verify", f"@{token_file}", "--audience", REGISTRY)
    assert verified.returncode == 0, verified.stderr
    assert "chain of responsibility" in verified.stdout
    assert "handed it to CNAV-CLI for 'pension file'" in verified.stdout
    assert "grant registry.read: 443061841" in verified.stdout
    inspected = interops("token", "inspect", handed.stdout.strip())
    assert (
        inspected.stdout.startswith("NOT VERIFIED")
        and "block 1: NET-ENTREPRISES -> CNAV-CLI" in inspected.stdout
    )
    wrong = interops(*at, "token", "verify", token, "--audience", "interops.other.v1.Other")
    assert wrong.returncode == 1 and "WRONG_AUDIENCE" in wrong.stderr
    garbage = interops(*at, "token", "verify", "not!base64", "--audience", REGISTRY)
    assert garbage.returncode == 1 and "MALFORMED" in garbage.stderr


def test_the_root_key_to_pin_is_shown(tmp_path: Path) -> None:
    shown = interops("directory", "root-key", INTEROPS_DATA_DIR=str(tmp_path))
    assert shown.returncode == 0 and shown.stdout.startswith("root key id: ed25519:")
    assert (tmp_path / "keys" / "root.pem").stat().st_mode & 0o077 == 0
