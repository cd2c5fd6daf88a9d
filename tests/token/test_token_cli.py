"""`interops keys`, `directory`, `declarant` and `token` as an operator and a user type them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from interops.token.v1.token_pb2 import CallProof

from clients.token_cli import load_signer
from tests.running_node import RunningNode
from token_suite.chain import sign_proof
from token_suite.keys import generate, write_private_key
from token_suite.wire import from_text, service_of, to_text

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
    holder_key = tmp_path / "lea.pem"
    keyless = interops(*at, "token", "issue", "--declarant", "44306184100047", "--last-name",
                       "DURAND", "--first-name", "Lea", "--audience", REGISTRY,
                       INTEROPS_PASSWORD="s3cret-enough")  # fmt: skip
    assert keyless.returncode == 2 and "--holder-key" in keyless.stderr
    issued = interops(*at, "token", "issue", "--declarant", "44306184100047", "--last-name",
                      "DURAND", "--first-name", "Lea", "--audience", REGISTRY, "--max-hops", "2",
                      "--purpose", "sign-in", "--holder-key", str(holder_key),
                      INTEROPS_PASSWORD="s3cret-enough")  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert holder_key.stat().st_mode & 0o077 == 0  # made for the chain, its owner's only
    token = issued.stdout.strip()
    as_lea = (*at, "--holder-key", str(holder_key))
    # The chain alone is nothing: its uses are proven with the holder key.
    unproven = interops(*at, "token", "verify", token, "--audience", REGISTRY)
    assert unproven.returncode == 1 and "PROOF_REQUIRED" in unproven.stderr
    read = interops(*as_lea, "--token", token, "registry", "validate", "44306184100047")
    assert read.returncode in (0, 1) and "44306184100047:" in read.stdout, read.stderr
    cnav = node.organism("CNAV-CLI", "CNAV")
    handed = interops(*as_lea, "token", "delegate", token, "--to", "CNAV-CLI", "--profile",
                      "application", "--purpose", "pension file")  # fmt: skip
    assert handed.returncode == 0, handed.stderr
    token_file = tmp_path / "token.txt"
    token_file.write_text(handed.stdout)
    cnav_key = tmp_path / "cnav.pem"
    write_private_key(cnav.key, cnav_key)
    as_cnav = (*at, "--organism", "CNAV-CLI", "--key", str(cnav_key))
    not_cnav = interops(*as_lea, "token", "verify", f"@{token_file}", "--audience", REGISTRY)
    assert not_cnav.returncode == 1 and "BAD_PROOF" in not_cnav.stderr  # CNAV's now
    verified = interops(*as_cnav, "token", "verify", f"@{token_file}", "--audience", REGISTRY)
    assert verified.returncode == 0, verified.stderr
    assert "chain of responsibility" in verified.stdout
    assert "handed it to CNAV-CLI for 'pension file'" in verified.stdout
    assert "grant registry.read: 443061841" in verified.stdout
    inspected = interops("token", "inspect", handed.stdout.strip())
    assert (
        inspected.stdout.startswith("NOT VERIFIED")
        and "block 1: NET-ENTREPRISES -> CNAV-CLI" in inspected.stdout
    )
    wrong = interops(*as_lea, "token", "verify", token, "--audience", "interops.other.v1.Other")
    assert wrong.returncode == 1 and "WRONG_AUDIENCE" in wrong.stderr
    garbage = interops(*as_lea, "token", "verify", "not!base64", "--audience", REGISTRY)
    assert garbage.returncode == 1 and "MALFORMED" in garbage.stderr


def test_token_proof_prints_the_header_a_rest_call_sends(tmp_path: Path) -> None:
    holder_key = tmp_path / "holder.pem"
    write_private_key(generate(), holder_key)
    token = to_text(b"any chain")  # a proof signs the chain's hash, whatever the chain
    method = "/interops.registry.v1.RegistryService/GetCompany"
    printed = interops("token", "proof", "--token", token, "--holder-key", str(holder_key),
                       "--method", method)  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    proof = CallProof.FromString(from_text(printed.stdout.strip()))
    signer = load_signer("", holder_key)
    assert proof.key_id == signer.key_id and len(proof.signature) == 64
    assert (
        proof.signature
        != CallProof.FromString(
            sign_proof(signer, method, service_of(method), b"any chain")
        ).signature
    )  # nonce
    keyless = interops("token", "proof", "--token", token, "--method", method,
                       INTEROPS_HOLDER_KEY="")  # fmt: skip
    assert keyless.returncode == 2 and "--holder-key" in keyless.stderr


def test_the_root_key_to_pin_is_shown(tmp_path: Path) -> None:
    shown = interops("directory", "root-key", INTEROPS_DATA_DIR=str(tmp_path))
    assert shown.returncode == 0 and shown.stdout.startswith("root key id: ed25519:")
    assert (tmp_path / "keys" / "root.pem").stat().st_mode & 0o077 == 0


def test_token_issue_proves_by_itself_whatever_the_global_credentials(
    node: RunningNode, database_url: str, tmp_path: Path
) -> None:
    """`token issue` signs its own request (a password, or the organism's proof): the global
    --organism/--key would add a second proof (BAD_PROOF) or another signer (WRONG_SIGNER)."""
    at = ("--address", node.address)
    acme = node.organism("ACME-ISSUE", "OC", rights=("registry.read",))
    key_file = tmp_path / "acme.pem"
    write_private_key(acme.key, key_file)
    as_acme = (*at, "--organism", "ACME-ISSUE", "--key", str(key_file))
    issued = interops(*as_acme, "token", "issue", "--audience", REGISTRY)
    assert issued.returncode == 0, issued.stderr
    assert from_text(issued.stdout.strip())
    on_db = {"INTEROPS_DATABASE_URL": database_url, "INTEROPS_PASSWORD": "s3cret-enough"}
    added = interops("declarant", "add", "44306184100047", "--last-name", "Roux",
                     "--first-name", "Ana", "--siren", "443061841", **on_db)  # fmt: skip
    assert added.returncode == 0, added.stderr
    as_acme_env = {"INTEROPS_ORGANISM": "ACME-ISSUE", "INTEROPS_KEY_FILE": str(key_file)}
    declared = interops(*at, "token", "issue", "--declarant", "44306184100047", "--last-name",
                        "Roux", "--first-name", "Ana", "--audience", REGISTRY, "--holder-key",
                        str(tmp_path / "ana.pem"), INTEROPS_PASSWORD="s3cret-enough",
                        **as_acme_env)  # fmt: skip
    assert declared.returncode == 0, declared.stderr


def test_keys_id_names_the_key_a_directory_lists(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    generated = interops("keys", "generate", "--out", str(key_file))
    key_id = generated.stdout.split("key id:")[1].split()[0]
    assert interops("keys", "id", str(key_file)).stdout.strip() == key_id
    missing = interops("keys", "id", str(tmp_path / "none.pem"))
    assert missing.returncode == 2 and "none.pem" in missing.stderr
