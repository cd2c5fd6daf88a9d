"""Two firms' DSNs for one establishment recorded at the same moment (two nodes, or a node's
parallel deposits): each locks the establishment's links in one order before it changes any, so
one waits for the other; before, each first locked its own link, then all of them for the
take-over, and PostgreSQL killed one of them as a deadlock (its deposit then read again). When
the establishment has no link yet there is no row to lock: its name is locked instead, so the
second sees the first's link and ends it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from registry.kernel.database import open_engine, upgrade
from registry.kernel.nir_keyring import NirKeyring
from registry.relations.schema import declared_links
from registry.relations.store import Link, RelationsStore
from tests.databases import PG_URL, fresh_database

ESTABLISHMENT, FIRST, SECOND = "55555555500017", "11111111100011", "22222222200022"


@pytest.fixture
def links(tmp_path: Path) -> Iterator[tuple[Engine, RelationsStore]]:
    """A fresh PostgreSQL database's engine, and a relations store over it."""
    if not PG_URL:
        pytest.skip("INTEROPS_TEST_DATABASE_URL is not set")
    with fresh_database("postgresql", tmp_path) as url:
        engine = open_engine(url)
        try:
            upgrade(engine)
            yield engine, RelationsStore(engine, NirKeyring.parse("k1 " + "A" * 43 + "=\n"))
        finally:
            engine.dispose()


def test_two_firms_recording_links_to_one_establishment_at_once_both_commit(
    links: tuple[Engine, RelationsStore],
) -> None:
    engine, store = links
    with engine.begin() as connection:
        connection.execute(insert(declared_links), [
            {"declarant_siret": firm, "declared_siret": ESTABLISHMENT,
             "first_period": period, "last_period": period, "last_deposit": "",
             "updated_at": 0}
            for firm, period in ((FIRST, "202601"), (SECOND, "202602"))
        ])  # fmt: skip
    # Each recording waits for the other at its second locking read of the links: had
    # the first one taken some of them (as before), both would hold what the other wants.
    barrier = threading.Barrier(2, timeout=2)
    reads: dict[int, int] = {}

    def second_read_waits(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT declared_links") and "FOR UPDATE" in statement:
            me = threading.get_ident()
            reads[me] = reads.get(me, 0) + 1
            if reads[me] == 2:  # (broken when the other waits on a lock)
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()

    event.listen(engine, "before_cursor_execute", second_read_waits)
    outcomes: dict[str, str] = {}

    def record(firm: str) -> None:
        try:
            store.record_links([Link(firm, ESTABLISHMENT, "202603", "202603", firm)])
            outcomes[firm] = "recorded"
        except Exception as error:
            outcomes[firm] = type(error).__name__

    threads = [threading.Thread(target=record, args=(firm,)) for firm in (FIRST, SECOND)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    event.remove(engine, "before_cursor_execute", second_read_waits)
    assert outcomes == {FIRST: "recorded", SECOND: "recorded"}
    with engine.connect() as connection:
        periods = dict(connection.execute(
            select(declared_links.c.declarant_siret, declared_links.c.last_period)
        ).all())  # fmt: skip
    assert periods == {FIRST: "202603", SECOND: "202603"}


def test_two_firms_first_dsns_for_a_new_establishment_at_once_end_the_earlier_link(
    links: tuple[Engine, RelationsStore],
) -> None:
    engine, store = links
    # The first firm's recording is under way (its transaction open) when the second
    # firm's, for a later month, starts: no link of either is there for the other yet.
    with engine.connect() as first:
        transaction = first.begin()
        store.record_links([Link(FIRST, ESTABLISHMENT, "202601", "202601", "d1")], first)
        recorded = threading.Event()

        def second() -> None:
            store.record_links([Link(SECOND, ESTABLISHMENT, "202602", "202602", "d2")])
            recorded.set()

        thread = threading.Thread(target=second)
        thread.start()
        waited = not recorded.wait(1.0)
        transaction.commit()
    thread.join(timeout=30)
    assert recorded.is_set()
    with engine.connect() as connection:
        ended = {row.declarant_siret: (row.ended_period, row.ended_by)
                 for row in connection.execute(select(declared_links))}  # fmt: skip
    # The second firm took the establishment over from 202602: the first firm's link
    # ended then (without the lock, both stayed live).
    assert ended == {FIRST: ("202602", SECOND), SECOND: ("", "")}
    assert waited  # for the first's commit, on the establishment's name
