"""A sending to many companies written by set-based statements (registry/notify/store.py): each
company's notification rendered with its own SIREN, one delivery per channel of its subscription
in its order (API and dashboard for a named company that did not subscribe), and held channels
delivered in the database, each delivery once, even by two dispatchers at the same time."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import Engine, func, select

from registry.notify.schema import notifications, notify_acks, notify_deliveries
from registry.notify.store import FETCHABLE, NOT_HELD, AckKind, NotifyStore, TemplateError
from registry.rcd.sirene_synth import siren_at

TOPIC = "AT_MP_RATE"
CHANNELS = {0: ["API"], 1: ["EMAIL", "API"], 2: ["DASHBOARD"], 3: ["DASHBOARD", "API", "EMAIL"]}


def _subscribed(store: NotifyStore, count: int, offset: int) -> list[str]:
    sirens = [siren_at(offset + i) for i in range(count)]
    for i, siren in enumerate(sirens):
        channels = CHANNELS[i % 4]
        store.subscribe(siren, TOPIC, channels, f"rh-{i}@example.fr" if "EMAIL" in channels else "")
    return sirens


def _deliveries(engine: Engine, ids: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                notify_deliveries.c.notification_id,
                notify_deliveries.c.channel,
                notify_deliveries.c.state,
                notify_deliveries.c.email,
            )
            .where(notify_deliveries.c.notification_id.in_(ids))
            .order_by(notify_deliveries.c.id)
        ).all()
    found: dict[str, list[tuple[str, str, str]]] = {i: [] for i in ids}
    for notification_id, channel, state, email in rows:
        found[notification_id].append((channel, state, email))
    return found


def test_each_subscriber_gets_its_own_rendering_and_its_channels_in_order(engine: Engine) -> None:
    store = NotifyStore(engine)
    sirens = _subscribed(store, 40, 7000)
    template = store.publish_template(
        "fanout-a", TOPIC, "Taux {siren}", "Pour {siren} ({year}) : {{brut}} {note}"
    )
    count, new = store.send(
        "fanout-a-1", template, None, {"year": "2027", "note": "{siren}"},
        official=True, deadline_ms=123,
    )  # fmt: skip
    assert (count, new) == (40, True)
    assert store.send("fanout-a-1", template, None, {}, official=True, deadline_ms=0) == (40, False)
    for i, siren in enumerate(sirens):
        [row] = store.list_for(siren, 10, None)
        assert row["subject"] == f"Taux {siren}"
        # A value is put in as it is: its own "{siren}" is not replaced.
        assert row["body"] == f"Pour {siren} (2027) : {{brut}} {{siren}}"
        assert (row["official"], row["deadline"], row["state"], row["fetched"]) == (1, 123, 0, 0)
        deliveries = _deliveries(engine, [row["id"]])[row["id"]]
        email = f"rh-{i}@example.fr" if "EMAIL" in CHANNELS[i % 4] else ""
        assert deliveries == [(c, "PENDING", email) for c in CHANNELS[i % 4]]
    ids = [store.list_for(siren, 1, None)[0]["id"] for siren in sirens]
    assert len(set(ids)) == 40 and all(len(i) == 32 for i in ids)


def test_named_companies_not_subscribed_get_the_api_and_the_dashboard(engine: Engine) -> None:
    store = NotifyStore(engine)
    subscribed = _subscribed(store, 4, 7100)
    stranger = siren_at(7199)
    template = store.publish_template("fanout-b", TOPIC, "Objet", "Corps {siren}")
    count, _ = store.send(
        "fanout-b-1", template, [stranger, subscribed[1], stranger], {},
        official=False, deadline_ms=0,
    )  # fmt: skip
    assert count == 2  # each company once
    [theirs] = store.list_for(stranger, 10, None)
    [mine] = store.list_for(subscribed[1], 10, None)
    assert theirs["body"] == f"Corps {stranger}"
    found = _deliveries(engine, [theirs["id"], mine["id"]])
    assert [c for c, _, _ in found[theirs["id"]]] == ["API", "DASHBOARD"]
    assert [c for c, _, _ in found[mine["id"]]] == ["EMAIL", "API"]


def test_a_missing_value_sends_nothing_unless_nobody_is_concerned(engine: Engine) -> None:
    store = NotifyStore(engine)
    sirens = _subscribed(store, 3, 7200)
    template = store.publish_template("fanout-c", "PAS_RATE", "Objet", "Corps {missing}")
    with pytest.raises(TemplateError):
        store.send("fanout-c-1", template, sirens, {}, official=False, deadline_ms=0)
    assert all(store.list_for(siren, 10, None) == [] for siren in sirens)
    # Nobody subscribed to PAS_RATE here: nothing to render, nothing refused.
    assert store.send("fanout-c-2", template, None, {}, official=False, deadline_ms=0)[0] == 0
    # The refused request id was not recorded: the corrected request goes out.
    count, new = store.send("fanout-c-1", template, sirens, {"missing": "x"},
                            official=False, deadline_ms=0)  # fmt: skip
    assert (count, new) == (3, True)


def test_two_dispatchers_deliver_every_held_delivery_once(engine: Engine) -> None:
    store = NotifyStore(engine)
    sirens = _subscribed(store, 400, 8000)
    template = store.publish_template("fanout-d", TOPIC, "Objet", "Corps {siren}")
    store.send("fanout-d-1", template, None, {}, official=False, deadline_ms=0)
    ids = {row["id"] for siren in sirens for row in store.list_for(siren, 10, None)}
    with engine.connect() as connection:  # this send's, and those the other tests left
        waiting = connection.execute(
            select(func.count()).where(
                notify_deliveries.c.channel != "EMAIL", notify_deliveries.c.state == "PENDING"
            )
        ).scalar_one()
    counts: list[int] = []

    def dispatch(trace_id: str) -> None:
        while store.held_due():
            counts.append(store.deliver_held(37, trace_id=trace_id))

    dispatchers = [threading.Thread(target=dispatch, args=(c * 32,)) for c in "ab"]
    for dispatcher in dispatchers:
        dispatcher.start()
    for dispatcher in dispatchers:
        dispatcher.join()
    found = _deliveries(engine, sorted(ids))
    held = [(i, c) for i, rows in found.items() for c, _, _ in rows if c != "EMAIL"]
    assert sum(counts) == waiting  # every one, none twice
    assert not store.held_due()
    with engine.connect() as connection:
        acks = connection.execute(
            select(notify_acks.c.notification_id, notify_acks.c.channel, notify_acks.c.kind).where(
                notify_acks.c.notification_id.in_(ids)
            )
        ).all()
        states = {
            notification_id: (state, fetched)
            for notification_id, state, fetched in connection.execute(
                select(notifications.c.id, notifications.c.state, notifications.c.fetched).where(
                    notifications.c.id.in_(ids)
                )
            )
        }
    # One DELIVERED acknowledgement per held delivery, none twice, none for e-mail.
    assert Counter((i, c) for i, c, _ in acks) == Counter(held)
    assert {k for _, _, k in acks} == {AckKind.DELIVERED}
    for notification_id, rows in found.items():
        channels = [c for c, _, _ in rows]
        assert all(s == ("PENDING" if c == "EMAIL" else "DELIVERED") for c, s, _ in rows)
        on_api = "API" in channels
        expected_fetched = FETCHABLE if on_api else NOT_HELD
        delivered = on_api or "DASHBOARD" in channels
        assert states[notification_id] == (int(delivered), expected_fetched), channels
