"""Two firms' DSNs for one establishment recorded at the same moment (two nodes, or a node's
parallel deposits): each locks the establishment's links in one order before it changes any, so
one waits for the other; before, each first locked its own link, then all of them for the
take-over, and PostgreSQL killed one of them as a deadlock (its deposit then read again). Row
locks left gaps (an establishment with no link yet has no row to lock; a link committed while
another recording waited is not in what that one's locking read returned): every writer of an
establishment's links or employments now locks its name first, and these tests fail without."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from registry.dsn.revealed_relations import Employment
from registry.kernel.database import open_engine, upgrade
from registry.kernel.nir_keyring import NirKeyring
from registry.relations.schema import declared_links, employment_declarants, employments
from registry.relations.store import Link, RelationsStore
from tests.databases import PG_URL, fresh_database

ESTABLISHMENT, FIRST, SECOND = "55555555500017", "11111111100011", "22222222200022"
OTHER_ESTABLISHMENT, THIRD = "66666666600016", "33333333300033"
NIR = "1850775123456"


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


def _paused_at_insert(engine: Engine) -> tuple[threading.Event, threading.Event, dict[str, int]]:
    """(reached, go, who): the thread whose id is who["id"] stops before inserting a link,
    says so on `reached`, and goes on once `go` is set (10 s at most)."""
    reached, go, who = threading.Event(), threading.Event(), {"id": -1}

    def pause(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == who["id"] and statement.startswith("INSERT INTO declared_"):
            reached.set()
            go.wait(10)

    event.listen(engine, "before_cursor_execute", pause)
    return reached, go, who


def _record_in_thread(
    store: RelationsStore, links: list[Link], outcomes: dict[str, str], name: str,
    who: dict[str, int] | None = None,
) -> threading.Thread:  # fmt: skip
    def record() -> None:
        if who is not None:
            who["id"] = threading.get_ident()
        try:
            store.record_links(links)
            outcomes[name] = "recorded"
        except Exception as error:
            outcomes[name] = type(getattr(error, "orig", error)).__name__

    thread = threading.Thread(target=record)
    thread.start()
    return thread


def _behind_a_first_link(
    engine: Engine, store: RelationsStore, links: list[Link], outcomes: dict[str, str],
    name: str,
) -> tuple[threading.Thread, threading.Event]:  # fmt: skip
    """A third firm's first link to ESTABLISHMENT being recorded, a recording of `links`
    starts in a thread; once the third's is committed, that thread is held just before it
    inserts its links, until the event returned is set."""
    reached, go, who = _paused_at_insert(engine)
    with engine.connect() as third:
        transaction = third.begin()
        store.record_links([Link(THIRD, ESTABLISHMENT, "202601", "202601", "d0")], third)
        thread = _record_in_thread(store, links, outcomes, name, who)
        time.sleep(0.5)
        transaction.commit()
    assert reached.wait(5)
    return thread, go


def test_a_link_recorded_while_another_recording_waits_is_weighed_by_it(
    links: tuple[Engine, RelationsStore],
) -> None:
    engine, store = links
    outcomes: dict[str, str] = {}
    second, go = _behind_a_first_link(
        engine, store, [Link(SECOND, ESTABLISHMENT, "202603", "202603", "d2")], outcomes, "second"
    )
    # The first firm's (202602), in a transaction it commits when told: it must wait for the
    # second's. Without the lock it went ahead, holding the third's link, on which the second's
    # take-over then waited, and from a read begun before the first's commit, missed its link.
    recorded, commit = threading.Event(), threading.Event()

    def first() -> None:
        with engine.connect() as connection, connection.begin():
            store.record_links([Link(FIRST, ESTABLISHMENT, "202602", "202602", "d1")], connection)
            recorded.set()
            commit.wait(10)

    first_thread = threading.Thread(target=first)
    first_thread.start()
    waited = not recorded.wait(1.0)
    go.set()
    time.sleep(0.5)
    commit.set()
    for thread in (first_thread, second):
        thread.join(timeout=30)
    assert recorded.is_set() and outcomes == {"second": "recorded"}
    with engine.connect() as connection:
        ended = {row.declarant_siret: (row.ended_period, row.ended_by)
                 for row in connection.execute(select(declared_links))}  # fmt: skip
    # Each firm's link ended when the next firm's months began; only the last one's is live.
    assert ended == {THIRD: ("202602", FIRST), FIRST: ("202603", SECOND), SECOND: ("", "")}
    assert waited  # for the second firm's recording, on the establishment's name


def test_recordings_of_two_establishments_at_once_do_not_deadlock(
    links: tuple[Engine, RelationsStore],
) -> None:
    # The order of the locks: every recording takes its establishments' names before any row.
    # One that took a name after a row (a name only where no link was found) deadlocked here.
    engine, store = links
    outcomes: dict[str, str] = {}
    first, go = _behind_a_first_link(engine, store, [
        Link(FIRST, ESTABLISHMENT, "202602", "202602", "a"),
        Link(FIRST, OTHER_ESTABLISHMENT, "202602", "202602", "a"),
    ], outcomes, "first")  # fmt: skip
    # The second firm's recording of both establishments sees the third firm's link at once.
    second = _record_in_thread(store, [
        Link(SECOND, ESTABLISHMENT, "202603", "202603", "b"),
        Link(SECOND, OTHER_ESTABLISHMENT, "202603", "202603", "b"),
    ], outcomes, "second")  # fmt: skip
    time.sleep(0.5)
    go.set()
    for thread in (first, second):
        thread.join(timeout=30)
    assert outcomes == {"first": "recorded", "second": "recorded"}  # not DeadlockDetected


def test_two_files_employments_for_one_establishment_at_once_record_one_contract(
    links: tuple[Engine, RelationsStore],
) -> None:
    engine, store = links
    contract = [Employment(ESTABLISHMENT, NIR, "20250101", "")]
    # Two months of one firm, read at once: the first's recording is under way.
    with engine.connect() as first:
        transaction = first.begin()
        store.record_employments(contract, (FIRST, "202602"), first)

        def second() -> None:
            store.record_employments(contract, (FIRST, "202603"))

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.7)
        transaction.commit()
    thread.join(timeout=30)
    with engine.connect() as connection:
        rows = connection.execute(select(employments.c.id)).all()
        declared = connection.execute(select(employment_declarants)).all()
    # One contract, declared for both months (without the lock: two rows, each with one month,
    # and a later end of the contract would close only one of them).
    assert len(rows) == 1
    assert [(row.first_period, row.last_period) for row in declared] == [("202602", "202603")]
