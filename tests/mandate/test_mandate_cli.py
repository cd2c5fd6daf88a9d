"""`interops creditor ...` (on the node's database) and `interops mandate ...` (a client of the
node) as an operator types them: a creditor registered with its checked SEPA identifier lists
and extracts its mandates; a bad identifier and an anonymous call are told plainly."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from interops.mandate.v1 import mandate_pb2 as pb

from clients.mandate_cli import read_iban
from registry.kernel.sealing import load_or_create_key
from registry.mandate.store import MandateStore, NewMandate
from registry.rcd.sirene_synth import siren_at, siret_of
from tests.mandate.test_mandates import IBAN, creditor_identifier
from tests.running_node import RunningNode


def interops(node: RunningNode, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTEROPS_DATABASE_URL": node.settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", "--address", node.address, *args],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def test_a_creditor_registers_then_lists_and_extracts_its_mandates(
    node: RunningNode, tmp_path: Path
) -> None:
    bad = interops(node, "creditor", "add", "OPERATOR", "--identifier", "FR00ZZZ123456")
    assert bad.returncode == 1 and "BAD_CREDITOR_IDENTIFIER" in bad.stderr
    ics = creditor_identifier("424242")
    added = interops(node, "creditor", "add", "OPERATOR", "--identifier", ics, "--name", "Op")
    assert added.returncode == 0, added.stderr
    assert f"OPERATOR  {ics}  Op" in interops(node, "creditor", "list").stdout
    node.organism("OPERATOR", rights=("mandate.read",))
    store = MandateStore(node.node.engine, load_or_create_key(node.settings.data_dir / "keys" /
                                                              "data.key"))  # fmt: skip
    debtor = siret_of(siren_at(70), 1)
    reference = f"{debtor[:9]}-RUM-CLI-1"
    created, _ = store.create(
        NewMandate(debtor, "OPERATOR", reference, IBAN, "AGRIFRPP", pb.SCHEME_B2B, "2026-10-01")
    )
    store.acknowledge(created)
    listed = interops(node, *node.cli_auth, "mandate", "creditor-list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split("\n")[0] == f"OPERATOR {reference} {debtor} B2B ACKNOWLEDGED"
    out = tmp_path / "mandates.csv"
    extracted = interops(node, *node.cli_auth, "mandate", "extract", "--out", str(out))
    assert extracted.returncode == 0, extracted.stderr
    assert "1 mandates of OPERATOR" in extracted.stdout
    assert f"{reference},{debtor},{IBAN},AGRIFRPP,B2B,2026-10-01,ACKNOWLEDGED" in out.read_text()
    anonymous = interops(node, "mandate", "list", siren_at(70))
    assert anonymous.returncode == 1 and "UNAUTHENTICATED TOKEN_MISSING" in anonymous.stderr


def test_the_iban_is_read_from_standard_input_not_the_command_line(node: RunningNode) -> None:
    assert read_iban("-", io.StringIO(f"{IBAN}\n")) == IBAN
    assert read_iban(None, io.StringIO(f"  {IBAN}  \nnext\n")) == IBAN
    assert read_iban(IBAN, io.StringIO("")) == IBAN  # --iban still works
    helped = interops(node, "mandate", "create", "--help")
    assert "standard input" in helped.stdout and "ps" in helped.stdout
    # Through the command: the IBAN piped in reaches the call (refused here for the token only).
    piped = subprocess.run(
        [sys.executable, "-m", "clients.cli", "--address", node.address, "mandate", "create",
         siret_of(siren_at(70), 1), "--creditor", "OPERATOR", "--bic", "AGRIFRPP",
         "--signed-on", "2026-10-01", "--iban", "-"],
        input=f"{IBAN}\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert piped.returncode == 1 and "TOKEN_MISSING" in piped.stderr
