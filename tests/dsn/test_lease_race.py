"""An acknowledgement landing between a lease's select and its update (SQLite: the select takes
no lock) must not be undone: the delivery stays acknowledged and is not handed over again."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import event

from registry.dsn.deposit_store import (
    DeliveryState,
    DepositStore,
    NewDeposit,
    RoutedShare,
    Validated,
    delivery_id,
)
from registry.kernel.database import open_engine, upgrade


def test_an_acknowledgement_between_a_leases_select_and_update_stands(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'race.db'}")
    upgrade(engine)
    store = DepositStore(engine, bytes(32))
    record, _ = store.create(NewDeposit(
        declarant="declarant:test", request_id=None, file_name="d.dsn", size=1,
        sha256=hashlib.sha256(b"x").digest(), nature="01", sirets=("10000000900017",),
    ))  # fmt: skip
    store.record_validation(record.id, Validated(
        conformant=True, norm_version="P25V01", nature="01", type="01", month="01032026",
        individuals=1, blocking=0, warnings=0,
    ), b"{}")  # fmt: skip
    store.record_routing(record.id, [RoutedShare("URSSAF", 1, b"\0" * 32, key_id="k")])
    wanted = delivery_id(record.id, "URSSAF")
    assert [d.id for d in store.lease("URSSAF", 10, 60_000)] == [wanted]  # first lease
    with engine.begin() as connection:  # its lease runs out
        connection.exec_driver_sql("UPDATE deliveries SET lease_until = 0")
    acknowledged: list[str] = []
    started: list[bool] = []

    def between(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The lease's update (the acknowledgement's own update passes through here too).
        if statement.startswith("UPDATE deliveries SET state") and not started:
            started.append(True)
            acknowledged.append(store.acknowledge(wanted, "key", b"signature").id)

    event.listen(engine, "before_cursor_execute", between)
    try:
        leased = store.lease("URSSAF", 10, 60_000)
    finally:
        event.remove(engine, "before_cursor_execute", between)
    assert acknowledged == [wanted]  # the acknowledgement did land in between
    assert leased == []
    found = store.delivery(wanted)
    assert found is not None and found.state == DeliveryState.ACKNOWLEDGED
    engine.dispose()
