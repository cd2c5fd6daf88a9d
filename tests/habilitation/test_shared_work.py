"""Work that nodes sharing one database take from it: bulk habilitation files, applied one
after the other whichever node applies them, and taken again when the node applying one died;
stock imports, failed as interrupted only once their process has stopped recording progress
(not when another node starts)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, update

from registry.habilitation.bulk import BulkQueue, BulkReport
from registry.habilitation.schema import bulk_files
from registry.operation.schema import operations
from registry.operation.store import OperationState, OperationStore
from server.rcd.import_jobs import KIND, ImportJobs


def test_bulk_files_go_one_at_a_time_across_nodes_and_outlive_a_dead_node(engine: Engine) -> None:
    a, b = BulkQueue(engine), BulkQueue(engine)
    first, second = f"op-a-{time.time_ns()}", f"op-b-{time.time_ns()}"
    a.enqueue(first, "100000009", 1, b"action,account,siret,service,portfolio\n")
    a.enqueue(second, "100000009", 1, b"action,account,siret,service,portfolio\n")
    taken = a.take_next("node-a")
    assert taken is not None and taken.operation_id == first
    assert b.take_next("node-b") is None  # the second waits for the first, on any node
    a.renew(first, "node-a")
    assert b.take_next("node-b") is None
    with engine.begin() as connection:  # node A dies: its claim runs out
        connection.execute(
            update(bulk_files).where(bulk_files.c.operation_id == first).values(claimed_until=1)
        )
    again = b.take_next("node-b")
    assert again is not None and again.operation_id == first
    a.renew(first, "node-a")  # a renewal by the node that lost the file changes nothing
    assert a.take_next("node-a") is None
    b.finish(first, BulkReport())
    last = a.take_next("node-a")
    assert last is not None and last.operation_id == second
    a.finish(second, BulkReport())


def test_only_imports_whose_process_went_quiet_are_failed(engine: Engine, tmp_path: Path) -> None:
    store = OperationStore(engine)
    live, _ = store.create(KIND, "bytes", 10, f"live-{time.time_ns()}")
    dead, _ = store.create(KIND, "bytes", 10, f"dead-{time.time_ns()}")
    store.progress(live.id, 1)  # another node's import, going on
    store.progress(dead.id, 1)
    quiet_since = datetime.now(UTC) - timedelta(minutes=10)
    with engine.begin() as connection:
        connection.execute(
            update(operations).where(operations.c.id == dead.id).values(updated_at=quiet_since)
        )
    ImportJobs(engine, store, tmp_path / "uploads", 1 << 20).interrupted_by_restart()
    states = {record.id: record.state for record in (store.get(live.id), store.get(dead.id))
              if record is not None}  # fmt: skip
    assert states == {live.id: OperationState.RUNNING, dead.id: OperationState.FAILED}
