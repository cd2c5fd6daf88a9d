"""Which waiting deposits a node's pipeline claims: events first, then those whose reading the
node holds (done as they arrived: `prefer`), then the oldest; never one another node holds."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, update

from registry.dsn.deposit_store import DepositStore, NewDeposit
from registry.dsn.schema import deposits


def _waiting(store: DepositStore, nature: str, number: int) -> str:
    record, _ = store.create(NewDeposit(
        declarant="declarant:claims", request_id=None, file_name=f"{number}.dsn", size=1,
        sha256=hashlib.sha256(f"claims {number}".encode()).digest(), nature=nature,
        sirets=("10000000900017",),
    ))  # fmt: skip
    with store.engine.begin() as connection:  # received in this order
        connection.execute(
            update(deposits).where(deposits.c.id == record.id).values(received_at=number)
        )
    return record.id


def test_a_node_claims_events_then_the_deposits_it_holds_the_reading_of(engine: Engine) -> None:
    store = DepositStore(engine, bytes(32))
    monthly = [_waiting(store, "01", number) for number in range(4)]
    event = _waiting(store, "04", 10)  # a work stoppage, received last
    # The node holds the readings of the two newest monthly declarations.
    held = [monthly[3], monthly[2]]
    assert store.claim("a", 3, 60_000, prefer=held) == [event, monthly[2], monthly[3]]
    # Another node prefers what this one claimed: it gets none of them, the oldest instead.
    assert store.claim("b", 3, 60_000, prefer=held) == [monthly[0], monthly[1]]
    assert store.claim("c", 3, 60_000, prefer=monthly) == []
