"""Every sign-in door against one limit (issue 19), on a real node and its web adapter: failures
through gRPC IssueToken, REST or the web form make every door wait at that address; the limit
lives in the database, so two nodes share it; an unknown identity, a wrong password and an
inactive account get one answer after one scrypt check each, and a wait is told alike whether
an account exists or not, before any check; a stranger's guesses make only the stranger's
address wait, never the owner elsewhere (many addresses at once: everyone a few seconds), and
an unlock lets everyone be checked at once; guesses sent at once are counted one by one; an
IPv6 /48 spraying its /64s gets no more attempts, nor rows, than its share; a client address
forged without the node's door secret counts as the connection's."""

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
from sqlalchemy import Engine, func, select, update

from clients.errors import from_rpc_error
from registry.kernel.database import open_engine, upgrade
from registry.trust.declarant_store import (
    DeclarantStore,
    SignInRefused,
    identity_digest,
)
from registry.trust.passwords import dummy_hash
from registry.trust.schema import declarants, sign_in_limits
from registry.trust.sign_in_limits import (
    CEILING_DELAY,
    FIRST_DELAY,
    FORGET_AFTER,
    FREE_FAILURES,
    IDENTITY_FAILURES,
    IDENTITY_WINDOW,
    MAX_DELAY,
    NETWORK_SHARE,
    SOURCE_WINDOW,
    SignInLimits,
    network_name,
    source_name,
)
from server.rpc.client_address import CLIENT_ADDRESS_METADATA, DOOR_SECRET_METADATA
from tests.databases import fresh_database
from tests.running_node import RunningNode, session_party
from tests.running_web import RunningWeb
from tests.sign_in_waits import LOOPBACK, NEXT_WAIT, prime
from tests.web_timeouts import HTTP_TIMEOUT
from token_suite.chain import session_signer

REGISTRY = "interops.registry.v1.RegistryService"
FIRM = "73282932000074"
PASSWORD = "door password"
ISSUE = "/v1/interops.token.v1.TokenService/IssueToken"
Forwarded = dict[str, str]
STRANGER = "203.0.113.66"


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
        httpx.post(web.url + ISSUE, json=_rest_body(who, password), timeout=HTTP_TIMEOUT).json()
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
        prime(engine, *who, source="192.0.2.1")
        with pytest.raises(SignInRefused):
            store.sign_in(*who, "a guess", source="192.0.2.1")
        with ScryptCount() as scrypt, pytest.raises(SignInRefused) as waiting:
            store.sign_in(*who, PASSWORD, source="192.0.2.1")
        assert waiting.value.reason == "TOO_MANY_ATTEMPTS" and scrypt.calls == 0


def _administrator(node: RunningNode, last_name: str) -> tuple[str, str, str]:
    """An active administrator of the firm (made once)."""
    admin = _account(node, last_name)
    mine = declarants.c.identity_digest == identity_digest(*admin)
    with node.node.engine.begin() as connection:
        connection.execute(update(declarants).values(role="ADMIN").where(mine))
    return admin


def test_a_stranger_makes_only_its_own_address_wait(node: RunningNode) -> None:
    admin = _administrator(node, "Admin")
    limits, identity = SignInLimits(node.node.engine), identity_digest(*admin)
    # The review's attack: a stranger guesses for hours from one address, as fast as the limit
    # lets it (forty guesses in about 6.5 h).
    clock, waits, guesses = time.time() - 10 * 3600, [], 0
    while guesses < 40:
        wait = limits.admit(identity, STRANGER, now=clock)
        if wait:
            waits.append(round(wait))
            clock += wait
        else:
            guesses += 1
    # Its own address waits longer and longer: free failures, then doubling up to the cap.
    doubling = [FIRST_DELAY * 2**n for n in range(10)]  # 1 s .. 512 s
    assert waits == doubling + [MAX_DELAY] * (40 - FREE_FAILURES - 1 - len(doubling))
    assert limits.admit(identity, STRANGER) == 0.0  # once more, now: the cap again
    assert MAX_DELAY - 60 <= limits.admit(identity, STRANGER) <= MAX_DELAY
    # Meanwhile the owner, from another address, is checked at once, mistakes included.
    assert by_grpc(node, admin, "a typo").reason == "INVALID_CREDENTIALS"
    assert by_grpc(node, admin, PASSWORD).outcome == "signed in"


def test_many_addresses_guessing_one_identity_make_everyone_wait_seconds(
    node: RunningNode,
) -> None:
    owner = _account(node, "Plafond")
    engine = node.node.engine
    limits, identity = SignInLimits(engine), identity_digest(*owner)
    now = time.time()
    bots = [f"10.0.{n // 200}.{n % 200 + 1}" for n in range(IDENTITY_FAILURES)]
    for bot in bots:  # a botnet guesses once from each address: each its first failure
        assert limits.admit(identity, bot, now=now) == 0.0
    # Beyond the ceiling, each source waits the short fixed delay before each attempt, a new
    # one too, and no longer: never a doubling, never a turn another source could take.
    newcomer = "10.9.9.9"
    assert limits.admit(identity, newcomer, now=now) == pytest.approx(CEILING_DELAY, abs=0.01)
    assert limits.admit(identity, newcomer, now=now + CEILING_DELAY) == 0.0
    assert limits.admit(identity, newcomer, now=now + CEILING_DELAY) == pytest.approx(
        CEILING_DELAY, abs=0.01
    )
    assert limits.admit(identity, bots[0], now=now) == 0.0  # its second guess
    assert limits.admit(identity, bots[0], now=now) == pytest.approx(CEILING_DELAY, abs=0.01)
    # The owner, from its own address: a few seconds, then its right password is checked.
    waiting = by_grpc(node, owner, PASSWORD)
    assert waiting.reason == "TOO_MANY_ATTEMPTS"
    assert 1 <= waiting.retry_after <= CEILING_DELAY
    store = DeclarantStore(engine, node.node.sign_in_limits)  # loopback's budget: the node's
    assert store.sign_in(*owner, PASSWORD, source=LOOPBACK, now=time.time() + CEILING_DELAY)
    # Its success cleared the identity's counts: checked at once, from anywhere.
    assert by_grpc(node, owner, PASSWORD).outcome == "signed in"
    assert limits.admit(identity, newcomer) == 0.0


def test_an_unlock_lets_every_address_be_checked_at_once(node: RunningNode) -> None:
    admin = _administrator(node, "Debloque")
    limits, identity = SignInLimits(node.node.engine), identity_digest(*admin)
    prime(node.node.engine, *admin, source=STRANGER)
    assert limits.admit(identity, STRANGER) == 0.0  # the stranger's next guess: 16 s to wait
    assert limits.admit(identity, STRANGER) > 1
    now = time.time()
    for n in range(IDENTITY_FAILURES):  # and many addresses: every new one waits a while
        limits.admit(identity, f"10.1.{n // 200}.{n % 200 + 1}", now=now)
    assert by_grpc(node, admin, PASSWORD).reason == "TOO_MANY_ATTEMPTS"
    limits.clear(identity)  # another administrator, or the letter's key, unlocks
    assert by_grpc(node, admin, PASSWORD).outcome == "signed in"
    limits.clear(identity)
    # Every address's count went, the stranger's too (the owner proved nothing here, an
    # administrator vouched): all are checked at once, then counted from 0 again.
    assert limits.admit(identity, STRANGER) == 0.0
    assert limits.admit(identity, "10.1.0.1") == 0.0


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
    # Two nodes' limits on one database, with room for the address's attempts.
    two = (SignInLimits(engine, source_attempts=100), SignInLimits(engine, source_attempts=100))
    identity, now = identity_digest(FIRM, "Rafale", "Alex"), time.time()
    for n in range(FREE_FAILURES):
        assert two[n % 2].admit(identity, "192.0.2.9", now=now) == 0.0
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda n: two[n % 2].admit(identity, "192.0.2.9", now=now),
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


@pytest.fixture
def empty(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database of its own, migrated, whose rows a test counts."""
    with fresh_database(backend, tmp_path) as url:
        engine = open_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def _rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(sign_in_limits)).scalar_one()
        )


def test_a_slash_48_spraying_its_slash_64s_gets_its_share(empty: Engine) -> None:
    limits, now = SignInLimits(empty, source_attempts=3), time.time()

    def attempt(n: int, address: str, at: float = now) -> bool:
        return limits.admit(identity_digest(FIRM, f"Jet{n}", "Alex"), address, now=at) == 0.0

    admitted = [attempt(n, f"2001:db8:48:{n:x}::1") for n in range(100)]
    assert admitted.count(True) == 3 * NETWORK_SHARE
    # An attempt the /48 refuses leaves no row: one for the /48's window, and three for each
    # attempt admitted (its /64's window, its identity's count from there and from anywhere).
    assert _rows(empty) == 1 + 3 * 3 * NETWORK_SHARE
    assert attempt(100, "2001:db8:49::1")  # another site is not held back
    assert attempt(101, "2001:db8:48:ffff::1", now + SOURCE_WINDOW)  # nor this one for long


def test_rows_are_kept_only_while_they_count(empty: Engine) -> None:
    limits, now = SignInLimits(empty), time.time()
    owner, guessed = identity_digest(FIRM, "Ligne", "Alex"), identity_digest(FIRM, "Cible", "Alex")
    assert limits.admit(owner, "192.0.2.60", now=now) == 0.0
    limits.succeeded(owner, "192.0.2.60")  # nothing is kept of an identity that got in
    assert _rows(empty) == 1  # its address's window
    for n in range(IDENTITY_FAILURES):
        assert limits.admit(guessed, f"10.2.{n // 200}.{n % 200 + 1}", now=now) == 0.0
    assert limits.admit(guessed, "10.3.0.1", now=now) > 0  # told to wait: a count of 0
    # A window per source; the guessed identity's count from each source but the last (told
    # to wait: a count of 0) and from all sources.
    assert _rows(empty) == (IDENTITY_FAILURES + 2) + (IDENTITY_FAILURES + 1) + 1
    # The windows of the sources once they end, and the count of 0 once its wait is over...
    assert limits.prune(now + SOURCE_WINDOW) == (IDENTITY_FAILURES + 2) + 1
    # ...the identity's window once it ends, its counts from each source a day later.
    assert limits.prune(now + IDENTITY_WINDOW) == 1
    assert limits.prune(now + FORGET_AFTER + 1) == IDENTITY_FAILURES
    assert _rows(empty) == 0


def test_the_source_of_an_address() -> None:
    assert source_name("192.0.2.1") == "192.0.2.1"
    assert source_name("::ffff:192.0.2.1") == "192.0.2.1"
    # One subscriber's IPv6 network is one source: its 2^64 addresses do not buy more guesses.
    assert source_name("2001:db8:1:2::1") == source_name("2001:db8:1:2:ffff::9")
    assert source_name("2001:db8:1:2::1") != source_name("2001:db8:1:3::1")
    # Its site's /48 shares a budget of its own.
    assert network_name("2001:db8:1:2::1") == network_name("2001:db8:1:ffff::1")
    assert network_name("2001:db8:1:2::1") != network_name("2001:db8:2:2::1")
    assert network_name("192.0.2.1") is None and network_name("::ffff:192.0.2.1") is None


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
