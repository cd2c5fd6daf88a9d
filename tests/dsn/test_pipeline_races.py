"""Deposits worked on at once (a node's PARALLEL ones, or two nodes'): two that reveal the same new
relation both insert it, and the one the database refuses records its validation again, finding
the relation there, instead of failing the deposit (which another claim would then read again:
work done twice). PostgreSQL, where the second insert waits for the first's commit. And a
validation is recorded whole: the relations a file reveals commit with its CCO or not at all
(up to RELATIONS_AT_ONCE of them; a larger file's go first, by batches)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, func, insert, select, update

from clients.client import Client
from registry.dsn.deposit_store import ShareFile
from registry.dsn.revealed_relations import Relations
from registry.dsn.schema import deposit_returns, deposits
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.dsn.validation import Report
from registry.relations.schema import declared_links, employment_declarants, employments
from registry.trust.declarant_store import DeclarantStore
from server.dsn import pipeline as pipeline_module
from tests.databases import PG_URL, fresh_database
from tests.running_node import RunningNode

DEPOSIT = "interops.dsn.v1.DepositService"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic


@pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")
def test_a_relation_inserted_meanwhile_by_another_deposit_fails_no_validation(
    tmp_path: Path,
) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        node = RunningNode(url, tmp_path / "data")
        try:
            deposit_id, report, relations = _deposited_and_read(node, tmp_path)
            pipeline, store = node.node.pipeline, node.node.deposits
            siret, period = sorted(relations.links)[0]
            # Another deposit's recording inserts the same link and has not committed yet.
            other = node.node.engine.connect()
            transaction = other.begin()
            other.execute(insert(declared_links).values(
                declarant_siret=relations.declarant_siret, declared_siret=siret,
                first_period=period, last_period=period, last_deposit="other", updated_at=0,
            ))  # fmt: skip
            failed: list[BaseException] = []

            def record_it() -> None:
                try:
                    pipeline._record_validation(deposit_id, report, relations)
                except BaseException as error:
                    failed.append(error)

            recording = threading.Thread(target=record_it)
            recording.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(node):  # its insert waits for the other's commit
                assert time.monotonic() < deadline and recording.is_alive()
                time.sleep(0.02)
            transaction.commit()
            other.close()
            recording.join(timeout=60)
            assert failed == []
            found = store.get(deposit_id)
            assert found is not None and found.state == "VALIDATED"
            with node.node.engine.connect() as connection:
                links = connection.execute(
                    select(func.count()).select_from(declared_links)
                    .where(declared_links.c.declared_siret == siret)
                ).scalar_one()  # fmt: skip
            assert links == 1
        finally:
            node.stop()


def test_a_validation_is_recorded_whole_its_relations_with_its_cco(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The links and employments a file reveals commit with its CCO or not at all: a recording
    # cut short (here its CCO's insert fails) leaves no relation behind, and is done again.
    with fresh_database(backend, tmp_path) as url:
        node = RunningNode(url, tmp_path / "data")
        try:
            deposit_id, report, relations = _deposited_and_read(node, tmp_path)
            pipeline, store, engine = node.node.pipeline, node.node.deposits, node.node.engine
            assert relations.employments
            revealed = (len(relations.links), len(relations.employments))
            # Up to RELATIONS_AT_ONCE, all in the CCO's transaction: none left behind. Beyond,
            # by batches first (no transaction holds its locks for long): left, upserted again.
            for at_once, left in ((pipeline_module.RELATIONS_AT_ONCE, (0, 0)), (0, revealed)):
                with engine.begin() as connection:  # as the deposit arrived
                    connection.execute(update(deposits).values(state="RECEIVED"))
                    for table in (deposit_returns, employment_declarants, employments,
                                  declared_links):  # fmt: skip
                        connection.execute(delete(table))
                monkeypatch.setattr(pipeline_module, "RELATIONS_AT_ONCE", at_once)
                event.listen(engine, "before_cursor_execute", _cco_fails)
                try:
                    with pytest.raises(RuntimeError):
                        pipeline._record_validation(deposit_id, report, relations)
                finally:
                    event.remove(engine, "before_cursor_execute", _cco_fails)
                assert _relations(engine) == left
                found = store.get(deposit_id)
                assert found is not None and found.state == "RECEIVED"
                pipeline._record_validation(deposit_id, report, relations)  # done again
                assert _relations(engine) == revealed
                found = store.get(deposit_id)
                assert found is not None and found.state == "VALIDATED"
        finally:
            node.stop()


def _deposited_and_read(node: RunningNode, tmp_path: Path) -> tuple[str, Report, Relations]:
    """A conformant deposit submitted to the node, its pipeline stopped (the tests record it by
    hand), and its reading."""
    node.run(node.node.pipeline.stop())
    node.encryption_keys()
    DeclarantStore(node.node.engine).create(
        FIRM, "Martin", "Camille", "race pw", [("dsn.deposit", DEMO_COMPANY.siren)]
    )
    chain = node.sign_in(FIRM, "Martin", "Camille", "race pw", audience=[DEPOSIT])
    path = tmp_path / "dsn.txt"
    path.write_bytes(b"".join(generate(3)))
    with Client(node.address, credentials=chain, timeout=60) as declarant:
        deposit_id = declarant.submit_deposit(path).id
    record = node.node.deposits.get(deposit_id)
    assert record is not None
    files: dict[str, ShareFile] = {}
    report, relations, _ = node.node.pipeline._read(record, files, [])
    for file in files.values():
        file.discard()
    assert report.conformant and relations.links
    return deposit_id, report, relations


def _cco_fails(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
    if statement.startswith("INSERT INTO deposit_returns"):
        raise RuntimeError("the CCO could not be stored")


def _relations(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(declared_links)).scalar_one(),
            connection.execute(select(func.count()).select_from(employments)).scalar_one(),
        )


def _waiting_on_a_lock(node: RunningNode) -> bool:
    with node.node.engine.connect() as connection:
        return bool(connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).scalar_one())  # fmt: skip
