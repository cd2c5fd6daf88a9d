"""Two nodes on one PostgreSQL database, each with a data directory of its own (the same keys,
nothing else shared on disk: sealed files and shares are in the database): each deposit is
claimed by one node's pipeline and validated and routed once, whichever node took it; a deposit
submitted on one node is validated and routed by the other, followed there and its share
downloaded there."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from interops.dsn.v1 import dsn_pb2
from sqlalchemy import select

from clients.client import Client
from clients.token_credentials import OrganismCredentials
from registry.dsn.schema import deposits
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.trust.declarant_store import DeclarantStore
from tests.databases import PG_URL, fresh_database
from tests.running_node import RunningNode

pytestmark = pytest.mark.slow

FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
DEPOSIT = "interops.dsn.v1.DepositService"
DELIVERY = "interops.dsn.v1.DeliveryService"
DEPOSITS = 24


@pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")
def test_two_nodes_share_the_work_and_do_each_deposit_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="interops.dsn")
    with fresh_database("postgresql", tmp_path) as url:
        first = RunningNode(url, tmp_path / "first")
        # Every node holds the same root, issuer and data keys; nothing else of the other's.
        shutil.copytree(tmp_path / "first" / "keys", tmp_path / "second" / "keys")
        second = RunningNode(url, tmp_path / "second")
        try:
            keys = first.encryption_keys()
            DeclarantStore(first.node.engine).create(
                FIRM, "Martin", "Camille", "two nodes pw", [("dsn.deposit", DEMO_COMPANY.siren)]
            )
            chain = first.sign_in(FIRM, "Martin", "Camille", "two nodes pw", audience=[DEPOSIT])
            submitted = []
            for number in range(DEPOSITS):
                path = tmp_path / f"dsn-{number}.txt"
                path.write_bytes(b"".join(generate(3, order=300 + number, seed=number)))
                node = (first, second)[number % 2]
                with Client(node.address, credentials=chain, timeout=60) as declarant:
                    submitted.append(declarant.submit_deposit(path).id)
            deadline = time.monotonic() + 120
            with Client(second.address, credentials=chain, timeout=60) as declarant:
                for deposit_id in submitted:  # followed on the other node too
                    while declarant.get_deposit(deposit_id).state != dsn_pb2.DEPOSIT_STATE_ROUTED:
                        assert time.monotonic() < deadline, f"{deposit_id} was not routed"
                        time.sleep(0.1)
            done = Counter(
                found.group(1)
                for record in caplog.records
                if (found := re.match(r"deposit (\w+) validated", record.getMessage()))
            )
            assert done == dict.fromkeys(submitted, 1)  # each validated once, by one node
            with first.node.engine.connect() as connection:
                holders = connection.execute(
                    select(deposits.c.claimed_by, deposits.c.claims)
                    .where(deposits.c.id.in_(submitted))
                ).all()  # fmt: skip
            assert all(claims == 1 for _, claims in holders)
            assert {holder for holder, _ in holders} <= {first.node.instance,
                                                         second.node.instance}  # fmt: skip
            # URSSAF, on the node the deposit was not made on, downloads its share.
            urssaf = second.organism("URSSAF", "URSSAF", rights=("dsn.deliveries",))
            credentials = OrganismCredentials(second.address, urssaf, [DELIVERY])
            with Client(second.address, credentials=credentials, timeout=60) as system:
                leased = system.fetch_deliveries(max_deliveries=100, lease_seconds=60)
                mine = next(d for d in leased if d.deposit_id == submitted[0])
                share = system.download_share(mine.id, keys["URSSAF"])
            assert share.startswith(b"S10.G00.00.001")
            # First's pipeline stopped: a deposit made on it is validated and routed by second,
            # from the database, and its share downloaded there.
            first.run(first.node.pipeline.stop())
            path = tmp_path / "dsn-elsewhere.txt"
            path.write_bytes(b"".join(generate(2, order=399, seed=99)))
            with Client(first.address, credentials=chain, timeout=60) as declarant:
                elsewhere = declarant.submit_deposit(path).id
            with Client(second.address, credentials=chain, timeout=60) as declarant:
                while declarant.get_deposit(elsewhere).state != dsn_pb2.DEPOSIT_STATE_ROUTED:
                    assert time.monotonic() < deadline + 60, f"{elsewhere} was not routed"
                    time.sleep(0.1)
            with first.node.engine.connect() as connection:
                holder = connection.execute(
                    select(deposits.c.claimed_by).where(deposits.c.id == elsewhere)
                ).scalar()
            assert holder == second.node.instance
            with Client(second.address, credentials=credentials, timeout=60) as system:
                leased = system.fetch_deliveries(max_deliveries=100, lease_seconds=60)
                mine = next(d for d in leased if d.deposit_id == elsewhere)
                share = system.download_share(mine.id, keys["URSSAF"])
            assert share.startswith(b"S10.G00.00.001")
            assert hashlib.sha256(share).digest() == mine.sha256  # as routed, whole
            for directory in ("first", "second"):  # nothing sealed on either node's disk
                assert not list((tmp_path / directory).rglob("*.sealed*"))
        finally:
            second.stop()
            first.stop()
