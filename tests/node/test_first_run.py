"""A newcomer's first run, `interops serve --demo-data`: it says where to go and who to sign in
as (declarant, administrator, operator, organisms), then stays quiet: no log line per call or
per poll. The demo operator follows exchanges; the demo declarant may not."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from interops.audit.v1 import audit_pb2

from clients.client import Client
from clients.errors import InteropsError
from clients.token_credentials import ChainCredentials, OrganismCredentials
from server.cli.demo_data import FIRM_SIRET
from server.cli.demo_trust import ADMINISTRATOR, DECLARANT, DECLARANT_PASSWORD, OPERATOR
from tests.running_node import session_party
from token_suite.chain import Signer, session_signer
from token_suite.keys import key_id_of, public_bytes, read_private_key

pytestmark = pytest.mark.slow

AUDIT = "interops.audit.v1.AuditService"
REGISTRY = "interops.registry.v1.RegistryService"


@dataclass
class FirstRun:
    process: subprocess.Popen[str]
    banner: list[str]
    address: str
    log: Path
    keys_dir: Path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """`interops serve --demo-data` on its embedded default (SQLite under its data directory),
    as `make run` starts it; its log (stderr) in a file."""
    data_dir = tmp_path_factory.mktemp("first-run")
    log = data_dir / "stderr.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTEROPS_")}
    env |= {
        "INTEROPS_GRPC_ADDRESS": "127.0.0.1:0",
        "INTEROPS_HTTP_ADDRESS": "127.0.0.1:0",
        "INTEROPS_DATA_DIR": str(data_dir),
        "INTEROPS_FEED_POLL_SECONDS": "0.05",
    }
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "serve", "--demo-data"],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line.rstrip("\n"))
        if "INTEROPS_KEY_FILE=" in line:  # the banner's last line
            break
    address = next((m.group(1) for line in banner
                    if (m := re.search(r"serving on (\S+)", line))), "")  # fmt: skip
    assert address, f"the node did not start: {banner}"
    try:
        yield FirstRun(process, banner, address, log, data_dir / "demo-keys")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _signed_in(run: FirstRun, identity: tuple[str, str, str], audience: str) -> ChainCredentials:
    session = session_signer("NET-ENTREPRISES")
    with Client(run.address) as anonymous:
        issued = anonymous.sign_in(*identity, DECLARANT_PASSWORD, holder=session_party(session),
                                   audience=[audience])  # fmt: skip
    return ChainCredentials(issued.token, session)


def test_the_banner_says_where_to_go_and_who_to_be(first_run: FirstRun) -> None:
    text = "\n".join(first_run.banner)
    assert re.search(r"sign in: http://127\.0\.0\.1:\d+/signin", text)
    assert re.search(r"operator: http://127\.0\.0\.1:\d+/operator", text)
    assert f"password {DECLARANT_PASSWORD}" in text
    for role, identity in (("declarant", DECLARANT), ("administrator", ADMINISTRATOR),
                           ("operator", OPERATOR)):  # fmt: skip
        line = next(line for line in first_run.banner if line.strip().startswith(role))
        assert all(part in line for part in identity), line
    assert "URSSAF" in text
    assert f"INTEROPS_KEY_FILE={first_run.keys_dir}/URSSAF.pem" in text


def test_the_demo_operator_follows_exchanges_and_the_declarant_does_not(
    first_run: FirstRun,
) -> None:
    operator = _signed_in(first_run, OPERATOR, AUDIT)
    with Client(first_run.address, credentials=operator) as client:
        records = list(client.list_audit_records(audit_pb2.ListRecordsRequest(page_size=5)))
    assert records, "the sign-ins above are in the journal"
    declarant = _signed_in(first_run, DECLARANT, AUDIT)
    with (
        Client(first_run.address, credentials=declarant) as client,
        pytest.raises(InteropsError) as refused,
    ):
        list(client.list_audit_records(audit_pb2.ListRecordsRequest(page_size=5)))
    assert refused.value.code.name == "PERMISSION_DENIED"


def test_calls_and_polls_log_nothing(first_run: FirstRun) -> None:
    before = first_run.log.read_text()
    key = read_private_key(first_run.keys_dir / "URSSAF.pem")
    urssaf = OrganismCredentials(
        first_run.address, Signer("URSSAF", key_id_of(public_bytes(key)), key), [REGISTRY]
    )
    with Client(first_run.address, credentials=urssaf) as client:
        for _ in range(20):
            assert client.get_establishment(FIRM_SIRET).siret == FIRM_SIRET
    time.sleep(1.0)  # background loops poll every 0.05 s meanwhile
    assert first_run.log.read_text() == before
    assert first_run.process.poll() is None


def test_json_log_lines_for_a_collector(tmp_path: Path) -> None:
    """INTEROPS_LOG_FORMAT=json: each log line is one JSON object (level, logger, message)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTEROPS_")}
    env |= {"INTEROPS_GRPC_ADDRESS": "127.0.0.1:0", "INTEROPS_HTTP_ADDRESS": "off",
            "INTEROPS_DATA_DIR": str(tmp_path), "INTEROPS_LOG_FORMAT": "json"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "clients.cli", "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    try:
        assert "serving on" in process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = process.stderr.read().splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all({"asctime", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"] == "interops.node" and "migrated" in r["message"] for r in records)
