"""Every sign-in door against one limit (issue 19), on a real node and its web adapter: failures
through gRPC IssueToken, REST or the web form make every door wait; the limit lives in the
database, so two nodes share it; an unknown identity, a wrong password and an inactive account
get one answer after one scrypt check each, and a wait is told alike whether an account exists
or not, before any check; a stranger's guesses keep an administrator out no longer than the
capped wait, and an unlock lets the owner in at once; guesses sent at once are counted one by
one; a client address forged without the node's door secret counts as the connection's."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import httpx
import pytest
from interops.token.v1 import token_pb2, token_service_pb2, token_service_pb2_grpc
from sqlalchemy import select, update

from clients.errors import from_rpc_error
from registry.trust.declarant_store import (
    DeclarantStore,
    SignInRefused,
    identity_digest,
)
from registry.trust.passwords import dummy_hash
from registry.trust.schema import declarants
from registry.trust.sign_in_limits import MAX_DELAY, SignInLimits, source_name
from server.rpc.client_address import CLIENT_ADDRESS_METADATA, DOOR_SECRET_METADATA
from tests.databases import fresh_database
from tests.running_node import RunningNode, session_party
from tests.running_web import RunningWeb
from tests.sign_in_waits import NEXT_WAIT, prime
from token_suite.chain import session_signer

REGISTRY = "interops.registry.v1.RegistryService"
FIRM = "73282932000074"
PASSWORD = "door password"
ISSUE = "/v1/interops.token.v1.TokenService/IssueToken"
Forwarded = dict[str, str]


@pytest.fixture(scope="module")
def node(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """The module's node, with room for all its tests' attempts from loopback in a minute (the
    per-address budget has a test of its own, on a node of its own)."""
    running = RunningNode(database_url, tmp_path_factory.mktemp("data"),
                          sign_in_attempts_a_minute=1000)  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def web(node: RunningNode) -> Iterator[RunningWeb]:
    running = RunningWeb(node)
    yield running
    running.stop()


@dataclass(frozen=True)
class Answer:
    """What a door said: "signed in", "refused" or "wait", with its reason (gRPC, REST), its
    words and the seconds to wait."""

    outcome: str
    reason: str = ""
    message: str = ""
    retry_after: int = 0

    def shape(self) -> Answer:
        """The answer without its figures (a wait of 15 s and one of 16 s look alike)."""
        return replace(self, message=re.sub(r"\d+", "N", self.message), retry_after=0)


def _account(node: RunningNode, last_name: str, status: str = "ACTIVE") -> tuple[str, str, str]:
    """An account of the firm (created once), in this status."""
    store = DeclarantStore(node.node.engine)
    if not store.exists(FIRM, last_name, "Alex"):
        store.create(FIRM, last_name, "Alex", PASSWORD)
    with node.node.engine.begin() as connection:
        connection.execute(
            update(declarants)
            .where(declarants.c.identity_digest == identity_digest(FIRM, last_name, "Alex"))
            .values(status=status)
        )
    return FIRM, last_name, "Alex"


def by_grpc(
    node: RunningNode, who: tuple[str, str, str], password: str,
    metadata: tuple[tuple[str, str | bytes], ...] = (),
) -> Answer:  # fmt: skip
    """IssueToken, straight to the node."""
    request = token_service_pb2.IssueTokenRequest(
        declarant=token_service_pb2.DeclarantSignIn(
            siret=who[0], last_name=who[1], first_name=who[2], password=password),
        profile=token_pb2.PROFILE_PORTAL, audience=[REGISTRY],
        holder=session_party(session_signer("NET-ENTREPRISES")),
    )  # fmt: skip
    with grpc.insecure_channel(node.address) as channel:
        try:
            token_service_pb2_grpc.TokenServiceStub(channel).IssueToken(
                request, metadata=metadata, timeout=30
            )
        except grpc.RpcError as failure:
            error = from_rpc_error(failure)
            outcome = {"UNAUTHENTICATED": "refused", "RESOURCE_EXHAUSTED": "wait"}
            return Answer(outcome[error.code.name], error.reason, error.message,
                          int(error.metadata.get("retry_after_seconds", 0)))  # fmt: skip
    return Answer("signed in")


def by_rest(
    web: RunningWeb, who: tuple[str, str, str], password: str, headers: Forwarded | None = None
) -> Answer:
    """POST /v1/.../IssueToken through the web adapter."""
    holder = session_party(session_signer("NET-ENTREPRISES")).public_key
    body = {
        "declarant": {"siret": who[0], "lastName": who[1], "firstName": who[2],
                      "password": password},
        "profile": "PROFILE_PORTAL", "audience": [REGISTRY],
        "holder": {"publicKey": base64.b64encode(holder).decode()},
    }  # fmt: skip
    answer = httpx.post(web.url + ISSUE, json=body, headers=headers or {}, timeout=30)
    if answer.status_code == 200:
        return Answer("signed in")
    status = answer.json()
    assert answer.status_code in (401, 429), status
    waits = answer.status_code == 429
    return Answer("wait" if waits else "refused", status["details"][0]["reason"],
                  status["message"],
                  int(answer.headers["retry-after"]) if waits else 0)  # fmt: skip


def by_form(
    web: RunningWeb, who: tuple[str, str, str], password: str, headers: Forwarded | None = None
) -> Answer:
    """The sign-in page, as a browser fills it in."""
    with httpx.Client(base_url=web.url, headers=headers or {}, timeout=30) as browser:
        page = browser.get("/signin").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        answer = browser.post("/signin", data={
            "siret": who[0], "last_name": who[1], "first_name": who[2], "password": password,
            "csrf": token.group(1)})  # fmt: skip
    if answer.status_code == 303:
        return Answer("signed in")
    assert answer.status_code in (401, 429), answer.status_code
    failure = re.search(r'id="failure">([^<]+)<', answer.text)
    assert failure is not None
    words = html.unescape(failure.group(1).strip())
    waits = answer.status_code == 429
    return Answer("wait" if waits else "refused", "", words,
                  int(answer.headers["retry-after"]) if waits else 0)  # fmt: skip


def _doors(node: RunningNode, web: RunningWeb) -> dict[str, Callable[..., Answer]]:
    return {
        "grpc": lambda who, password: by_grpc(node, who, password),
        "rest": lambda who, password: by_rest(web, who, password),
        "form": lambda who, password: by_form(web, who, password),
    }


@pytest.mark.parametrize("door", ["grpc", "rest", "form"])
def test_a_failure_at_any_door_makes_every_door_wait_until_an_unlock(
    node: RunningNode, web: RunningWeb, door: str
) -> None:
    who = _account(node, f"Porte-{door}")
    identity = prime(node.node.engine, *who)  # a stranger failed nine times, an hour ago
    doors = _doors(node, web)
    failed = doors[door](who, "a guess")
    assert failed.outcome == "refused"
    assert failed.reason == ("INVALID_CREDENTIALS" if door != "form" else "")
    for name, attempt in doors.items():  # even with the right password
        waiting = attempt(who, PASSWORD)
        assert waiting.outcome == "wait", name
        assert 1 <= waiting.retry_after <= NEXT_WAIT, name
        assert waiting.reason == ("TOO_MANY_ATTEMPTS" if name != "form" else "")
    assert "Trop de tentatives" in doors["form"](who, PASSWORD).message
    SignInLimits(node.node.engine).clear(identity)  # an administrator's unlock, a letter's key
    assert doors[door](who, PASSWORD).outcome == "signed in"


def test_unknown_wrong_and_inactive_get_one_answer_at_every_door(
    node: RunningNode, web: RunningWeb
) -> None:
    active = _account(node, "Pareil")
    inactive = _account(node, "Candidat", status="CANDIDATE")
    unknown = (FIRM, "Personne", "Alex")
    for name, attempt in _doors(node, web).items():
        answers = {
            "unknown": attempt(unknown, PASSWORD),
            "wrong password": attempt(active, "a guess"),
            "inactive, wrong password": attempt(inactive, "a guess"),
        }
        assert len(set(answers.values())) == 1, (name, answers)
        assert answers["unknown"].outcome == "refused"
        if name != "form":
            assert answers["unknown"].reason == "INVALID_CREDENTIALS"
        # Only whoever gives the right password learns that the account is not active.
        told = attempt(inactive, PASSWORD)
        assert told.outcome == "refused" and told != answers["unknown"]
    rest_bodies = [
        httpx.post(web.url + ISSUE, json=_rest_body(who, password)).json()
        for who, password in ((unknown, PASSWORD), (active, "a guess"), (inactive, "a guess"))
    ]
    assert rest_bodies[0] == rest_bodies[1] == rest_bodies[2]


def _rest_body(who: tuple[str, str, str], password: str) -> dict[str, Any]:
    holder = session_party(session_signer("NET-ENTREPRISES")).public_key
    return {"declarant": {"siret": who[0], "lastName": who[1], "firstName": who[2],
                          "password": password},
            "profile": "PROFILE_PORTAL", "audience": [REGISTRY],
            "holder": {"publicKey": base64.b64encode(holder).decode()}}  # fmt: skip


def test_a_wait_is_told_alike_whether_the_account_exists_or_not(
    node: RunningNode, web: RunningWeb
) -> None:
    known = _account(node, "Connu")
    unknown = (FIRM, "Inconnu", "Alex")
    for who in (known, unknown):
        prime(node.node.engine, *who)
        assert by_grpc(node, who, "a guess").reason == "INVALID_CREDENTIALS"
    for name, attempt in _doors(node, web).items():
        told = [attempt(who, PASSWORD) for who in (known, unknown)]
        assert told[0].outcome == "wait" and told[0].shape() == told[1].shape(), name
        assert abs(told[0].retry_after - told[1].retry_after) <= 1, name


class ScryptCount:
    """Counts the scrypt derivations (hashlib.scrypt, a C function) made on this thread."""

    def __init__(self) -> None:
        self.calls = 0

    def __enter__(self) -> ScryptCount:
        sys.setprofile(self._event)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)

    def _event(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and arg is hashlib.scrypt:
            self.calls += 1


def test_every_sign_in_makes_one_scrypt_check_and_a_wait_none(node: RunningNode) -> None:
    engine = node.node.engine
    store = DeclarantStore(engine, SignInLimits(engine))
    dummy_hash()  # made once per process, beforehand
    active = _account(node, "Hache")
    inactive = _account(node, "Hache-Inactif", status="CANDIDATE")
    cases = {
        "unknown": ((FIRM, "Hache-Inconnu", "Alex"), PASSWORD),
        "wrong password": (active, "a guess"),
        "inactive, wrong password": (inactive, "a guess"),
        "inactive, right password": (inactive, PASSWORD),
        "right password": (active, PASSWORD),
    }
    for case, (who, password) in cases.items():
        with ScryptCount() as scrypt, contextlib.suppress(SignInRefused):
            store.sign_in(*who, password, source="192.0.2.1")
        assert scrypt.calls == 1, case
    # The dummy hash costs what an account's hash costs.
    with engine.connect() as connection:
        stored = connection.execute(select(declarants.c.password_hash).where(
            declarants.c.identity_digest == identity_digest(*active))).scalar_one()  # fmt: skip
    assert dummy_hash().split("$")[:4] == stored.split("$")[:4]
    for who in (active, (FIRM, "Hache-Inconnu", "Alex")):
        prime(engine, *who)
        with pytest.raises(SignInRefused):
            store.sign_in(*who, "a guess", source="192.0.2.1")
        with ScryptCount() as scrypt, pytest.raises(SignInRefused) as waiting:
            store.sign_in(*who, PASSWORD, source="192.0.2.1")
        assert waiting.value.reason == "TOO_MANY_ATTEMPTS" and scrypt.calls == 0


def test_a_stranger_keeps_an_administrator_out_no_longer_than_the_cap(node: RunningNode) -> None:
    admin = _account(node, "Admin")
    limits, identity = SignInLimits(node.node.engine), identity_digest(*admin)
    with node.node.engine.begin() as connection:
        connection.execute(update(declarants).values(role="ADMIN")
                           .where(declarants.c.identity_digest == identity))  # fmt: skip
    # A stranger guesses all day long from ever new addresses, as fast as the limit lets them.
    clock, guesses = time.time() - 20_000, 0
    while guesses < 30:
        wait = limits.admit(identity, f"203.0.113.{guesses}", now=clock)
        if wait:
            assert wait <= MAX_DELAY
            clock += wait
        else:
            guesses += 1
    assert clock < time.time()
    assert by_grpc(node, admin, "a guess").reason == "INVALID_CREDENTIALS"  # and once more now
    waiting = by_grpc(node, admin, PASSWORD)
    assert waiting.reason == "TOO_MANY_ATTEMPTS"
    assert MAX_DELAY - 60 <= waiting.retry_after <= MAX_DELAY  # the cap, no longer
    limits.clear(identity)  # another administrator, or the letter's key, unlocks
    assert by_grpc(node, admin, PASSWORD).outcome == "signed in"
    assert by_grpc(node, admin, "a guess").outcome == "refused"  # counting again from 0


def test_two_nodes_on_one_database_share_the_limit(node: RunningNode, database_url: str) -> None:
    replica = RunningNode(database_url, node.settings.data_dir, sign_in_attempts_a_minute=1000)
    try:
        who = _account(node, "Replique")
        identity = prime(node.node.engine, *who)
        assert by_grpc(node, who, "a guess").outcome == "refused"
        assert by_grpc(replica, who, PASSWORD).reason == "TOO_MANY_ATTEMPTS"
        replica.node.sign_in_limits.clear(identity)
        assert by_grpc(node, who, PASSWORD).outcome == "signed in"
    finally:
        replica.stop()


def test_guesses_sent_at_once_are_counted_one_by_one(node: RunningNode) -> None:
    engine = node.node.engine
    two = (SignInLimits(engine), SignInLimits(engine))  # two nodes' limits on one database
    identity, now = identity_digest(FIRM, "Rafale", "Alex"), time.time()
    for n in range(5):  # the free failures
        assert two[n % 2].admit(identity, "192.0.2.9", now=now) == 0.0
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda n: two[n % 2].admit(identity, f"192.0.2.{n}", now=now),
                              range(16)))  # fmt: skip
    # One more guess is checked; it makes the others wait 1 s, the first wait after the free
    # failures, as if they had come one after the other.
    assert waits.count(0.0) == 1
    assert all(w == pytest.approx(1.0, abs=0.01) for w in waits if w)
    many = SignInLimits(engine, source_attempts=6)
    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(
            lambda n: many.admit(identity_digest(FIRM, f"Spray{n}", "Alex"), "192.0.2.200",
                                 now=now) == 0.0, range(16)))  # fmt: skip
    assert admitted.count(True) == 6  # one address spraying identities: its budget, no more


def test_the_source_of_an_address() -> None:
    assert source_name("192.0.2.1") == "192.0.2.1"
    assert source_name("::ffff:192.0.2.1") == "192.0.2.1"
    # One subscriber's IPv6 network is one source: its 2^64 addresses do not buy more guesses.
    assert source_name("2001:db8:1:2::1") == source_name("2001:db8:1:2:ffff::9")
    assert source_name("2001:db8:1:2::1") != source_name("2001:db8:1:3::1")


def test_an_address_forged_without_the_door_secret_counts_as_the_connection(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        lonely = RunningNode(url, tmp_path / "data", sign_in_attempts_a_minute=3)
        adapter = RunningWeb(lonely)
        try:
            _forged_addresses_are_ignored(lonely, adapter)
        finally:
            adapter.stop()
            lonely.stop()


def _forged_addresses_are_ignored(node: RunningNode, web: RunningWeb) -> None:
    def nobody(n: int) -> tuple[str, str, str]:
        return FIRM, f"Nobody{n}", "Alex"

    forged = [
        ((CLIENT_ADDRESS_METADATA, "203.0.113.1"),),
        ((CLIENT_ADDRESS_METADATA, "203.0.113.1"), (DOOR_SECRET_METADATA, b"\0" * 32)),
        ((DOOR_SECRET_METADATA, b"guess"), (CLIENT_ADDRESS_METADATA, "203.0.113.1")),
    ]
    for n, metadata in enumerate(forged):
        assert by_grpc(node, nobody(n), "a guess", metadata).reason == "INVALID_CREDENTIALS"
    # They counted against loopback, the connection's address: its 3 attempts are spent.
    assert by_grpc(node, nobody(3), "a guess").reason == "TOO_MANY_ATTEMPTS"
    # The node's own adapter passes its clients' addresses on (a proxy on loopback names them):
    # 203.0.113.1 has its own budget, which the forged calls did not touch.
    first = {"X-Forwarded-For": "203.0.113.1"}
    assert by_rest(web, nobody(4), "a guess", first).reason == "INVALID_CREDENTIALS"
    assert by_form(web, nobody(5), "a guess", first).outcome == "refused"
    assert by_form(web, nobody(6), "a guess", first).outcome == "refused"
    waiting = by_rest(web, nobody(7), "a guess", first)
    assert waiting.reason == "TOO_MANY_ATTEMPTS" and 1 <= waiting.retry_after <= 60
    assert by_form(web, nobody(8), "a guess", first).outcome == "wait"
    assert by_form(web, nobody(9), "a guess", {"X-Forwarded-For": "203.0.113.2"}).outcome == (
        "refused"
    )
