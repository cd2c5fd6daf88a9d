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
    claimed = store.claim("a", 4, 60_000, prefer=held)
    assert claimed == ([event, monthly[2], monthly[3], monthly[0]], [])
    # Another node preferring them gets none (they are said unclaimable), the oldest instead.
    assert store.claim("b", 4, 60_000, prefer=held) == ([monthly[1]], sorted(held))
    assert store.claim("c", 4, 60_000, prefer=monthly) == ([], sorted(monthly))


def test_the_deposits_held_take_half_a_claim_at_most_so_none_waits_for_ever(
    engine: Engine,
) -> None:
    # Deposits arriving faster than they are routed keep the node's readings full: were those
    # always claimed first, the deposits that arrived while it was full (only scanned) would
    # wait as long as the load lasts.
    store = DepositStore(engine, bytes(32))
    older = [_waiting(store, "01", 20 + number) for number in range(2)]
    held = [_waiting(store, "01", 30 + number) for number in range(6)]
    claimed = store.claim("a", 4, 60_000, prefer=held)
    assert claimed.ids == [held[0], held[1], *older]
