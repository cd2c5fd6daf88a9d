"""Issue 17, through every door of the web adapter and its callers: a partner site that
receives a hand-back NAVIGATION chain and cuts it back to the user's PORTAL chain holds nothing
it can use (REST, gRPC, DelegateToken, the partner demo's accept all refuse it with a named
reason), and a signed-in session's chain stops working at sign-out (REVOKED at the node, and at
the partner demo's offline verifier after one refresh of its revocation list)."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from interops.token.v1 import token_pb2
from starlette.applications import Starlette

from clients.client import Client
from clients.errors import InteropsError
from clients.partner_demo import partner_app, verifier_for
from clients.token_credentials import ChainCredentials
from registry.dsn.synth import DEMO_COMPANY
from registry.trust.declarant_store import DeclarantStore
from registry.trust.directory_store import DirectoryStore
from server.web.sessions import COOKIE, Session
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from token_suite.chain import sign_proof
from token_suite.keys import public_bytes
from token_suite.wire import encode, from_text, service_of, to_text

SITE = "PARTNER-PREFIX"
SITE_URL = "http://partner-prefix.example"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
SIREN = DEMO_COMPANY.siren
PASSWORD = "prefix password"
# What the cut PORTAL chain was for: one call of each service a partner would want.
REST_CALLS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/interops.dsn.v1.DepositService/ListDeposits", {}),
    ("/interops.notify.v1.NotificationService/ListNotifications", {"siren": SIREN}),
    ("/interops.habilitation.v1.HabilitationService/ListHabilitations", {}),
    ("/interops.registry.v1.RegistryService/GetCompany", {"siren": SIREN}),
)


@pytest.fixture(scope="module")
def world(node: RunningNode) -> Iterator[dict[str, Any]]:
    """The web adapter, a partner site in the directory with its key, a declarant."""
    directory = DirectoryStore(node.node.engine)
    if SITE not in {o.code for o in directory.snapshot(60).organisms}:
        directory.add_organism(SITE, "Partenaire", "PARTNER_SITE", [SITE_URL])
    site = node.organism(SITE, "PARTNER_SITE", rights=())
    declarants = DeclarantStore(node.node.engine)
    if not declarants.exists(FIRM, "Prefix", "Paul"):
        declarants.create(FIRM, "Prefix", "Paul", PASSWORD,
                          [("dsn.deposit", SIREN), ("notify.read", SIREN)])  # fmt: skip
    web = RunningWeb(node)
    try:
        yield {"web": web, "site": site}
    finally:
        web.stop()


def _form_token(browser: httpx.Client, url: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', browser.get(url).text)
    assert found is not None
    return found.group(1)


def _hand_back(browser: httpx.Client) -> bytes:
    """Signs in from the partner's link (or goes straight back when signed in) and returns
    the NAVIGATION chain the portal posts to the partner."""
    query = {"partner": SITE, "return_to": f"{SITE_URL}/callback"}
    page = browser.get("/signin", params=query)
    if 'name="token"' not in page.text:
        form = {"siret": FIRM, "last_name": "Prefix", "first_name": "Paul",
                "password": PASSWORD, "csrf": _form_token(browser, "/signin"), **query}  # fmt: skip
        page = browser.post("/signin", data=form)
    assert page.status_code == 200, page.text
    found = re.search(r'name="token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return from_text(found.group(1))


def _cut(token: bytes, blocks: int) -> bytes:
    """The chain cut back to its first `blocks` blocks, as a holder of it can do."""
    chain = token_pb2.TokenChain.FromString(token)
    del chain.blocks[blocks:]
    return encode(chain)


def _reason(answer: httpx.Response) -> list[str]:
    return [detail.get("reason", "") for detail in answer.json()["details"]]


@contextlib.contextmanager
def _partner_demo(node: RunningNode, web: RunningWeb) -> Iterator[httpx.Client]:
    """The demo partner site served on a loopback port (uvicorn, in a thread), verifying
    offline; its revocation list is fetched again after a quarter of a second."""
    root = public_bytes(node.node.trust.root_key).hex()
    verifier = verifier_for(node.address, root, revocations_seconds=0.25)
    app = partner_app(verifier, SITE, web.url, SITE_URL)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the partner did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as partner:
            yield partner
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_partner_that_cuts_its_hand_back_to_the_portal_chain_is_refused_at_every_door(
    node: RunningNode, world: dict[str, Any]
) -> None:
    web, site = world["web"], world["site"]
    with httpx.Client(base_url=web.url) as browser:
        navigation = _hand_back(browser)
    blocks = [token_pb2.Block.FromString(b.payload)
              for b in token_pb2.TokenChain.FromString(navigation).blocks]  # fmt: skip
    assert [b.profile for b in blocks] == [token_pb2.PROFILE_PORTAL, token_pb2.PROFILE_NAVIGATION]
    assert blocks[1].holder == token_pb2.Party(organism=SITE, key_id=site.key_id)
    assert blocks[0].holder.public_key and not blocks[0].holder.key_id  # the session's key
    portal = _cut(navigation, 1)

    # REST: without a proof, and with the partner's own proof (the only key it has).
    for method, body in REST_CALLS:
        url = f"{web.url}/v1{method}"
        bearer = {"Authorization": f"Bearer {to_text(portal)}"}
        alone = httpx.post(url, json=body, headers=bearer)
        assert alone.status_code == 401 and "PROOF_REQUIRED" in _reason(alone), alone.text
        proof = to_text(sign_proof(site, method, service_of(method), portal))
        proven = httpx.post(url, json=body, headers={**bearer, "interops-proof": proof})
        assert proven.status_code == 401 and "BAD_PROOF" in _reason(proven), proven.text

    # gRPC, with the partner's proof.
    as_site = Client(node.address, credentials=ChainCredentials(portal, site))
    with as_site, pytest.raises(InteropsError) as grpc_refused:
        as_site.get_company(SIREN)
    assert grpc_refused.value.reason == "BAD_PROOF"

    # DelegateToken: the backbone signs no hop for the cut chain, to the partner itself say.
    with Client(node.address) as anonymous, pytest.raises(InteropsError) as delegate_refused:
        anonymous.delegate_token(
            portal, site, holder=token_pb2.Party(organism=SITE, key_id=site.key_id),
            profile=token_pb2.PROFILE_APPLICATION, purpose="widening by a cut",
        )  # fmt: skip
    assert delegate_refused.value.reason == "BAD_PROOF"

    # The partner demo: the whole hand-back is accepted once; the cut chain is not its own.
    with _partner_demo(node, web) as partner:
        accepted = partner.post("/callback", data={"token": to_text(navigation)})
        assert accepted.status_code == 200, accepted.text
        refused = partner.post("/callback", data={"token": to_text(portal)})
        assert refused.status_code == 401 and "WRONG_HOLDER" in refused.text, refused.text


def _session(web: RunningWeb, browser: httpx.Client) -> Session:
    """The adapter's session of this browser (looked at from outside, for the test only)."""
    app = web.server.server.config.app
    assert isinstance(app, Starlette)
    sessions = app.state.sessions
    found = sessions._sessions.get(browser.cookies[COOKIE])
    assert isinstance(found, Session) and found.signed_in
    return found


def test_sign_out_ends_the_sessions_chain_at_the_node_and_at_the_partner(
    node: RunningNode, world: dict[str, Any]
) -> None:
    web = world["web"]
    with _partner_demo(node, web) as partner, httpx.Client(base_url=web.url) as browser:
        before = _hand_back(browser)
        after = _hand_back(browser)  # a second hand-back of the same session, kept for later
        session = _session(web, browser)
        assert session.signer is not None
        token, key = session.token, session.signer
        assert "signer" not in repr(session) and key.key_id not in repr(session)
        assert browser.cookies[COOKIE] != token.hex()  # the cookie holds only the session id
        with Client(node.address, credentials=ChainCredentials(token, key)) as as_session:
            assert isinstance(list(as_session.list_deposits(page_size=1)), list)
        assert partner.post("/callback", data={"token": to_text(before)}).status_code == 200

        signed_out = browser.post("/signout", data={"csrf": _form_token(browser, "/dashboard")})
        assert signed_out.status_code == 303
        assert session.signer is None  # the adapter forgot the key

        ended = Client(node.address, credentials=ChainCredentials(token, key))
        with ended, pytest.raises(InteropsError) as revoked:
            list(ended.list_deposits(page_size=1))
        assert revoked.value.reason == "REVOKED"
        assert _refused_after_refresh(partner, after) == "REVOKED"


def _refused_after_refresh(partner: httpx.Client, token: bytes) -> str:
    """The partner's verdict once its revocation list was fetched again: the node signs a new
    list at most once a second, the partner fetches it after a quarter of a second."""
    time.sleep(1.5)
    answer = partner.post("/callback", data={"token": to_text(token)})
    found = re.search(r'id="reason">([A-Z_]+)', answer.text)
    assert answer.status_code == 401 and found is not None, answer.text
    return found.group(1)
