"""A deposit stored is answered as stored (`DepositStore.create` returns the row its insert
wrote, without reading it again): the same record a read gives, and a retry of the same deposit
gets the first one's."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from sqlalchemy import Engine

from registry.dsn.deposit_store import DepositState, DepositStore, NewDeposit, Receipt


def test_a_deposit_created_is_the_record_a_read_gives(engine: Engine) -> None:
    store = DepositStore(engine, bytes(32))
    new = NewDeposit(
        declarant="declarant:created", request_id="request-1", file_name="march.dsn",
        size=12, sha256=hashlib.sha256(b"march").digest(), nature="01", type="01",
        month="01032026", norm_version="P26V01", sirets=("10000000900017", "10000000900025"),
        trace_parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )  # fmt: skip
    record, created = store.create(new)
    assert created and record == store.get(new.id)
    assert record.state == DepositState.RECEIVED and record.deliveries == ()
    assert record.sirets == new.sirets and record.version == 1
    again, created = store.create(replace(new, id="another-id"))
    assert not created and again == record
    are = replace(new, id="refused", request_id="request-2", receipt=Receipt.ARE,
                  rejection_message="x" * 600)  # fmt: skip
    refused, _ = store.create(are)
    assert refused == store.get("refused") and refused.state == DepositState.REJECTED
    assert len(refused.rejection_message) == 500
