"""Dates in the command line's text output are ISO 8601 UTC to the second
(2026-12-06T10:15:03Z), whether the contracts carry them as epoch seconds, milliseconds or
Timestamps; its JSON output keeps the protobuf JSON mapping (lowerCamelCase names)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from clients.text import utc_milliseconds, utc_seconds, utc_timestamp
from registry.rcd.sirene_synth import StockFiles
from tests.running_node import RunningNode
from token_suite.keys import write_private_key
from token_suite.wire import to_text

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
AT = 1796552103  # 2026-12-06T10:15:03Z


def interops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_epoch_times_and_timestamps_read_as_iso_8601_utc() -> None:
    assert utc_seconds(AT) == "2026-12-06T10:15:03Z"
    assert utc_milliseconds(AT * 1000 + 999) == "2026-12-06T10:15:03Z"
    assert utc_timestamp(Timestamp(seconds=AT, nanos=5)) == "2026-12-06T10:15:03Z"
    assert utc_seconds(0) == utc_milliseconds(0) == utc_timestamp(Timestamp()) == "-"


def test_token_and_audit_listings_print_iso_dates(node: RunningNode, tmp_path: Path) -> None:
    chain = to_text(node.session_credentials().token)
    inspected = interops("token", "inspect", chain)
    assert re.search(f"not_before={ISO} expires={ISO} ", inspected.stdout), inspected.stdout
    auditor = node.organism("AUDITOR-CLI", "URSSAF", rights=("audit.read",))
    key = tmp_path / "auditor.pem"
    write_private_key(auditor.key, key)
    listed = interops("--address", node.address, "--organism", "AUDITOR-CLI", "--key", str(key),
                      "audit", "list")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines and all(re.match(f"{ISO}  ", line) for line in lines), listed.stdout


def test_json_output_uses_the_canonical_names_rest_answers_with(
    node: RunningNode, loaded: StockFiles
) -> None:
    shown = interops("--address", node.address, *node.cli_auth, "registry", "get",
                     loaded.sirets[0])  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    establishment = json.loads(shown.stdout)
    assert establishment["siret"] == loaded.sirets[0] and "nafCode" in establishment
    assert not [name for name in establishment if "_" in name], establishment
