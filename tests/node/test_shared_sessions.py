"""Issue 21: nodes sharing one database serve the same browsers and refuse each other's replays.

Two nodes on one PostgreSQL database (one data volume), each with its own web adapter: a browser
sent from one to the other by a round-robin stays signed in, a sign-out on either ends the
session on both, and a proof captured on its way to one node is refused by the other
(REPLAYED). The session rows hold no cookie id, chain, key, form token or name in clear. On
every backend, one node's adapter keeps its sessions across a restart, and its store binds each
sealed row to its place and prunes it."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select, update

from clients.client import Client
from clients.credentials import Metadata
from clients.errors import InteropsError
from clients.token_credentials import ChainCredentials
from registry.dsn.synth import DEMO_COMPANY
from registry.trust.declarant_store import DeclarantStore
from registry.trust.schema import web_sessions
from registry.trust.web_session_store import WebSessionStore
from server.web.app import WebServer
from server.web.sessions import COOKIE, Session, session_of
from tests.databases import PG_URL, fresh_database
from tests.running_node import RunningNode

FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
SIREN = DEMO_COMPANY.siren
PASSWORD = "shared sessions pw"
LAST, FIRST = "Partage", "Camille"


@contextmanager
def _adapter(node: RunningNode) -> Iterator[str]:
    """The node's web adapter as `interops serve` starts it (with the node's shared session
    rows), on a free loopback port: its base URL."""
    settings = replace(node.settings, http_address="127.0.0.1:0")
    server = WebServer(settings, node.node.internal_port, node.node.rights,
                       door_secret=node.node.door_secret,
                       session_rows=node.node.web_sessions)  # fmt: skip
    port = node.run(server.start())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        node.run(server.stop())


@contextmanager
def _two_nodes(tmp_path: Path) -> Iterator[tuple[RunningNode, RunningNode]]:
    """Two nodes on one fresh PostgreSQL database, with one data volume (the same keys)."""
    with fresh_database("postgresql", tmp_path) as url:
        shared = tmp_path / "volume"
        first = RunningNode(url, shared)
        second = RunningNode(url, shared)
        try:
            yield first, second
        finally:
            second.stop()
            first.stop()


def _declarant(node: RunningNode) -> None:
    declarants = DeclarantStore(node.node.engine)
    if not declarants.exists(FIRM, LAST, FIRST):
        declarants.create(FIRM, LAST, FIRST, PASSWORD,
                          [("dsn.deposit", SIREN), ("notify.read", SIREN)])  # fmt: skip


def _form_token(browser: httpx.Client, url: str) -> str:
    page = browser.get(url)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def _sign_in(browser: httpx.Client, form_at: str, post_to: str) -> httpx.Response:
    """Fetches the sign-in form from one adapter and posts it to another (or the same)."""
    form = {"siret": FIRM, "last_name": LAST, "first_name": FIRST, "password": PASSWORD,
            "csrf": _form_token(browser, f"{form_at}/signin")}  # fmt: skip
    return browser.post(f"{post_to}/signin", data=form)


def _dashboard_with(adapter: str, session_id: str) -> httpx.Response:
    """GET /dashboard carrying this cookie, as anyone who copied it would."""
    with httpx.Client(cookies={COOKIE: session_id}) as someone:
        return someone.get(f"{adapter}/dashboard")


def _stored(node: RunningNode, session_id: str) -> Session:
    """The session as the store holds it (opened with the node's data key)."""
    payload = node.node.web_sessions.read(session_id, time.time())
    assert payload is not None
    return session_of(session_id, payload)


def _refusal(node: RunningNode, credentials: ChainCredentials) -> str:
    """The reason a call with these credentials is refused for ("" when it is not)."""
    with Client(node.address, credentials=credentials) as client:
        try:
            list(client.list_deposits(page_size=1))
        except InteropsError as error:
            return error.reason
    return ""


def _rows(node: RunningNode) -> list[tuple[bytes, bytes]]:
    with node.node.engine.connect() as connection:
        found = connection.execute(select(web_sessions.c.digest, web_sessions.c.sealed)).all()
    return [(bytes(digest), bytes(sealed)) for digest, sealed in found]


@pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")
def test_a_browser_moves_between_two_nodes_and_a_sign_out_on_one_ends_it_on_both(
    tmp_path: Path,
) -> None:
    with _two_nodes(tmp_path) as (first, second), _adapter(first) as a, _adapter(second) as b:
        _declarant(first)
        with httpx.Client() as browser:  # one cookie jar for both: a round-robin's browser
            signed_in = _sign_in(browser, form_at=a, post_to=b)  # A's form token, on B
            assert signed_in.status_code == 303, signed_in.text
            assert signed_in.headers["location"] == "/dashboard"
            session_id = browser.cookies[COOKIE]
            dashboard = browser.get(f"{a}/dashboard")
            assert dashboard.status_code == 200 and f"{FIRST} {LAST}" in dashboard.text

            # At rest: one row, found by the id's digest, with nothing of the session in clear.
            session = _stored(first, session_id)
            assert session.signer is not None and session.token
            ((digest, sealed),) = _rows(first)
            assert digest == hashlib.sha256(session_id.encode()).digest()
            secrets = (session_id.encode(), FIRST.encode(), LAST.encode(), FIRM.encode(),
                       session.token, session.signer.key.private_bytes_raw(),
                       session.csrf.encode())  # fmt: skip
            assert not [s for s in secrets if s in sealed or s in digest]

            csrf = _form_token(browser, f"{a}/dashboard")
            assert browser.post(f"{b}/signout", data={"csrf": csrf}).status_code == 303
        refused = _dashboard_with(a, session_id)
        assert refused.status_code == 303 and refused.headers["location"] == "/signin"
        assert _rows(first) == []
        # Node A refuses the chain too: B revoked its root block at sign-out.
        deadline = time.monotonic() + 10
        credentials = ChainCredentials(session.token, session.signer)
        while not (reason := _refusal(first, credentials)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reason == "REVOKED"


@pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")
def test_a_new_sign_in_is_a_new_session_for_every_node(tmp_path: Path) -> None:
    """Session fixation: the anonymous id a sign-in started from (which an attacker may have
    planted) is ended on every node, and the signed-in session has another."""
    with _two_nodes(tmp_path) as (first, second), _adapter(first) as a, _adapter(second) as b:
        _declarant(first)
        with httpx.Client() as browser:
            browser.get(f"{a}/signin")
            planted = browser.cookies[COOKIE]
            assert _sign_in(browser, form_at=a, post_to=b).status_code == 303
            assert browser.cookies[COOKIE] != planted
            assert browser.get(f"{a}/dashboard").status_code == 200
        for adapter in (a, b):
            assert _dashboard_with(adapter, planted).headers["location"] == "/signin"


class _Recording(ChainCredentials):
    """A chain's credentials that keep what they sent: what an eavesdropper captures."""

    sent: Metadata = ()

    def metadata(self, method: str) -> Metadata:
        self.sent = super().metadata(method)
        return self.sent


class _Replaying:
    """Sends captured metadata again, unchanged."""

    def __init__(self, captured: Metadata) -> None:
        self.captured = captured

    def metadata(self, method: str) -> Metadata:
        return self.captured


@pytest.mark.skipif(not PG_URL, reason="INTEROPS_TEST_DATABASE_URL is not set")
def test_a_proof_captured_on_one_node_is_refused_by_the_other(tmp_path: Path) -> None:
    with _two_nodes(tmp_path) as (first, second):
        chain = first.session_credentials()
        recording = _Recording(chain.token, chain.holder)
        with Client(first.address, credentials=recording) as on_first:
            assert on_first.validate_siret(FIRM) is not None
        captured = recording.sent
        assert any(name == "interops-proof-bin" for name, _ in captured)
        with (
            Client(second.address, credentials=_Replaying(captured)) as replayed,
            pytest.raises(InteropsError) as refused,
        ):
            replayed.validate_siret(FIRM)
        assert refused.value.reason == "REPLAYED"
        # The chain itself is good on the second node: only the spent proof was refused.
        with Client(second.address, credentials=chain) as fresh:
            assert fresh.validate_siret(FIRM) is not None


def test_one_nodes_adapter_keeps_its_sessions_across_a_restart(node: RunningNode) -> None:
    """On any backend (SQLite included): the sessions are the node's, not the adapter
    process's; a sign-out deletes the row."""
    _declarant(node)
    with httpx.Client() as browser:
        with _adapter(node) as before:
            assert _sign_in(browser, form_at=before, post_to=before).status_code == 303
        session_id = browser.cookies[COOKIE]
        with _adapter(node) as after:
            assert browser.get(f"{after}/dashboard").status_code == 200
            csrf = _form_token(browser, f"{after}/dashboard")
            assert browser.post(f"{after}/signout", data={"csrf": csrf}).status_code == 303
            assert _dashboard_with(after, session_id).headers["location"] == "/signin"
    digest = hashlib.sha256(session_id.encode()).digest()
    assert digest not in {d for d, _ in _rows(node)}


def test_a_sealed_row_opens_only_in_its_place_and_until_its_time(node: RunningNode) -> None:
    store = node.node.web_sessions
    now = time.time()
    store.write("first-id", now + 60, b"first payload")
    store.write("second-id", now + 60, b"second payload")
    assert store.read("first-id", now) == b"first payload"
    assert store.read("unknown-id", now) is None
    assert store.read("first-id", now + 120) is None  # expired
    first, second = (hashlib.sha256(i.encode()).digest() for i in ("first-id", "second-id"))
    with node.node.engine.begin() as connection:
        # The first row's sealed session moved into the second row: it does not open there.
        moved = connection.execute(
            select(web_sessions.c.sealed).where(web_sessions.c.digest == first)
        ).scalar_one()
        connection.execute(
            update(web_sessions).where(web_sessions.c.digest == second).values(sealed=moved)
        )
        # The first row's end pushed back by an hour: it does not open either.
        connection.execute(update(web_sessions).where(web_sessions.c.digest == first)
                           .values(expires=web_sessions.c.expires + 3600))  # fmt: skip
    assert store.read("second-id", now) is None
    assert store.read("first-id", now) is None
    store.delete("first-id")
    store.delete("second-id")


def test_the_store_prunes_expired_rows_and_holds_its_capacity(node: RunningNode) -> None:
    with node.node.engine.begin() as connection:
        connection.execute(delete(web_sessions))
    store = WebSessionStore(node.node.engine, node.node.web_sessions.sealer, capacity=3)
    now = time.time()
    store.write("expired", now - 10, b"gone")
    for number in range(5):
        store.write(f"live-{number}", now + 600, b"kept")
        time.sleep(0.002)  # distinct creation moments: the oldest goes first
    assert store.prune(now) == 1 + 2
    assert [store.read(f"live-{n}", now) is not None for n in range(5)] == [False, False] + [
        True
    ] * 3
    assert len(_rows(node)) == 3


def test_a_flood_of_anonymous_sessions_signs_nobody_out(node: RunningNode) -> None:
    """Anybody makes anonymous sessions by fetching pages: beyond capacity they go first, and
    the signed-in sessions, however old, stay."""
    with node.node.engine.begin() as connection:
        connection.execute(delete(web_sessions))
    store = WebSessionStore(node.node.engine, node.node.web_sessions.sealer, capacity=3)
    now = time.time()
    store.write("signed-in", now + 600, b"person", signed_in=True)
    for number in range(6):
        time.sleep(0.002)
        store.write(f"anonymous-{number}", now + 600, b"form token")
    assert store.prune(now) == 4
    assert store.read("signed-in", now) == b"person"
    assert [store.read(f"anonymous-{n}", now) is not None for n in range(6)] == [False] * 4 + [
        True
    ] * 2
