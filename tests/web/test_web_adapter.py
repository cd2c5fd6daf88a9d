"""The web adapter for humans, end to end in a real headless Chromium (Debian's, driven by
Playwright): a partner site sends its user to the sign-in page and gets them back carried by a
single-use NAVIGATION chain it verifies offline; the user submits a DSN from the dashboard and
sees its state change, acknowledges a notification, goes to the partner and back; an operator
finds the exchange by deposit id. Screenshots of the main pages go to tests/out/screenshots/.

Then, over plain HTTP: forms without their form token are refused, pages carry their security
headers and session cookie flags (Secure over TLS), the node's sign-in limits make the form
wait (429, Retry-After; tests/token/test_sign_in_doors.py has every door), return
addresses a partner does not own are refused, error pages say what went wrong without internals.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from interops.notify.v1 import notify_pb2

from clients.client import Client
from registry.dsn.synth import DEMO_COMPANY, generate
from registry.trust.declarant_store import DeclarantStore
from registry.trust.directory_store import DirectoryStore
from registry.trust.sign_in_limits import SignInLimits
from tests.certificates import TestAuthority
from tests.databases import fresh_database
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from tests.sign_in_waits import NEXT_WAIT, prime
from tests.web_timeouts import HTTP_TIMEOUT
from token_suite.keys import public_bytes

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parents[1] / "out" / "screenshots"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
PASSWORD = "web password"
NOTIFY = "interops.notify.v1.NotificationService"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A node on SQLite, its web adapter, the demo partner site as a process of its own, a
    declarant of the firm (DSN deposits, its client's notifications) and an operator."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("db")) as url:
        node = RunningNode(url, tmp_path_factory.mktemp("data"))
        web = RunningWeb(node)
        partner_port = _free_port()
        partner_url = f"http://127.0.0.1:{partner_port}"
        DirectoryStore(node.node.engine).add_organism(
            "PARTNER-DEMO", "Site partenaire de démonstration", "PARTNER_SITE", [partner_url]
        )
        node.organism("PARTNER-DEMO", "PARTNER_SITE", rights=())  # the key hand-backs name
        node.encryption_keys()  # the organisms' keys its deposits' shares are sealed to
        declarants = DeclarantStore(node.node.engine)
        declarant = declarants.create(FIRM, "Martin", "Camille", PASSWORD,
                                      [("dsn.deposit", DEMO_COMPANY.siren),
                                       ("notify.read", DEMO_COMPANY.siren)])  # fmt: skip
        declarants.create(FIRM, "Opera", "Tor", PASSWORD, [("audit.read", None)])
        root = public_bytes(node.node.trust.root_key).hex()
        partner = subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "--address", node.address, "partner-demo",
             "--root-key", root, "--listen", f"127.0.0.1:{partner_port}", "--portal", web.url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "INTEROPS_TRACING_EXPORTER": "none"},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(partner_url, timeout=1)
                break
            except httpx.TransportError:
                assert partner.poll() is None, partner.stdout.read() if partner.stdout else ""
                assert time.monotonic() < deadline, "the partner site did not start"
                time.sleep(0.1)
        try:
            yield {"node": node, "web": web, "partner": partner_url, "declarant": declarant}
        finally:
            partner.terminate()
            partner.wait(timeout=10)
            web.stop()
            node.stop()


def _notify_the_company(node: RunningNode) -> None:
    """An organism sends the company an official notice, on its dashboard."""
    signer = node.organism("CARSAT-WEB", "OC", rights=("notify.send", "notify.read"))
    with Client(node.address, credentials=node.credentials(signer, (NOTIFY,))) as carsat:
        carsat.notify.Subscribe(notify_pb2.SubscribeRequest(subscription=notify_pb2.Subscription(
            siren=DEMO_COMPANY.siren, topic=notify_pb2.TOPIC_AT_MP_RATE,
            channels=[notify_pb2.CHANNEL_DASHBOARD])))  # fmt: skip
        carsat.notify.PublishTemplate(notify_pb2.PublishTemplateRequest(
            template=notify_pb2.Template(name="atmp-web", topic=notify_pb2.TOPIC_AT_MP_RATE,
                                         subject="Votre taux AT/MP 2027",
                                         body="Votre taux est de {rate} %.")))  # fmt: skip
        carsat.notify.Send(notify_pb2.SendRequest(
            request_id="web-1", template="atmp-web", sirens=[DEMO_COMPANY.siren],
            values={"rate": "2.31"}, official=True))  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM} (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        yield launched
        launched.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _sign_in(page: Any, last: str, first: str) -> None:
    page.fill("#siret", FIRM)
    page.fill("#last_name", last)
    page.fill("#first_name", first)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_a_declarants_day_in_the_browser(
    world: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    node, web, partner = world["node"], world["web"], world["partner"]
    _notify_the_company(node)
    context = browser.new_context()
    page = context.new_page()
    # The partner site sends its user to the portal's sign-in page.
    page.goto(partner)
    _shot(page, "partner-home")
    page.click("text=Se connecter avec le portail")
    page.wait_for_url(re.compile(re.escape(web.url) + r"/signin\?partner=PARTNER-DEMO"))
    assert "Site partenaire de démonstration" in page.inner_text("main")
    _shot(page, "sign-in")
    _sign_in(page, "Martin", "Camille")
    # Back on the partner, carried by a NAVIGATION chain in a POST, verified offline there.
    page.wait_for_url(f"{partner}/callback")
    assert page.inner_text("#subject") == f"declarant:{world['declarant']}"
    assert "PARTNER-DEMO" in page.inner_text("table") and "NAVIGATION" in page.inner_text("table")
    assert "token=" not in page.url
    _shot(page, "partner-signed-in")
    # Back to the portal: still signed in.
    page.click("text=Retour au portail")
    page.wait_for_url(f"{web.url}/dashboard")
    _shot(page, "dashboard")
    # A DSN submitted from the page; its state changes as the pipeline moves it on.
    dsn = tmp_path / "mars.dsn"
    dsn.write_bytes(b"".join(generate(5, order=701)))
    page.set_input_files("#file", str(dsn))
    page.click("text=Déposer")
    page.wait_for_url(re.compile(re.escape(web.url) + r"/deposits/[0-9a-f]+"))
    deposit_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#state >> text=Transmise", timeout=60_000)  # reloads until then
    assert "CCO" in page.inner_text("table")
    _shot(page, "deposit")
    # The notification, acknowledged from the dashboard: an authenticated acknowledgement.
    page.goto(f"{web.url}/dashboard")
    assert "CCO" in page.inner_text("table[aria-labelledby=returns-title]")
    page.wait_for_selector("text=Votre taux AT/MP 2027")
    page.click("text=Accuser réception")
    page.wait_for_selector("text=Lu et accusé")
    _shot(page, "notification-acknowledged")
    with Client(node.address, credentials=node.credentials(
            node.organism("CARSAT-WEB", "OC"), (NOTIFY,))) as carsat:  # fmt: skip
        listed = carsat.notify.ListNotifications(
            notify_pb2.ListNotificationsRequest(siren=DEMO_COMPANY.siren)
        ).notifications
    acks = [(a.kind, a.actor) for a in listed[0].acknowledgements]
    assert (notify_pb2.ACK_KIND_AUTHENTICATED, f"declarant:{world['declarant']}") in acks
    # To the partner again, without signing in again; the same chain twice is refused.
    with page.expect_request(f"{partner}/callback") as posted:
        page.click("text=Aller sur Site partenaire de démonstration")
    page.wait_for_url(f"{partner}/callback")
    assert page.inner_text("#subject") == f"declarant:{world['declarant']}"
    form = posted.value.post_data or ""
    assert form.startswith("token=")
    replay = httpx.post(
        f"{partner}/callback",
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=HTTP_TIMEOUT,
    )
    assert replay.status_code == 401 and "REPLAYED" in replay.text
    context.close()

    # An operator finds the exchange by the deposit's id.
    operator = browser.new_context().new_page()
    operator.goto(f"{web.url}/signin")
    _sign_in(operator, "Opera", "Tor")
    operator.wait_for_url(f"{web.url}/dashboard")
    operator.goto(f"{web.url}/operator?deposit_id={deposit_id}")
    text = operator.inner_text("#records")
    assert "SubmitDeposit" in text and f"deposit:{deposit_id}" in text
    _shot(operator, "operator")


def _form_token(client: httpx.Client, url: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(url).text)
    assert found is not None
    return found.group(1)


def test_forms_headers_cookies_and_error_pages(world: dict[str, Any]) -> None:
    web = world["web"]
    with httpx.Client(base_url=web.url, timeout=HTTP_TIMEOUT) as browser:
        page = browser.get("/signin")
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'nonce-" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
        form = {"siret": FIRM, "last_name": "Martin", "first_name": "Camille",
                "password": PASSWORD}  # fmt: skip
        refused = browser.post("/signin", data=form)  # no form token: refused (CSRF)
        assert refused.status_code == 403
        assert browser.post("/signin", data={**form, "csrf": "guess"}).status_code == 403
        signed = browser.post("/signin", data={**form, "csrf": _form_token(browser, "/signin")})
        assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
        assert browser.post("/deposits", files={"file": ("x.dsn", b"x")},
                            data={"csrf": "guess"}).status_code == 403  # fmt: skip
        missing = browser.get("/deposits/0123456789abcdef0123456789abcdef")
        assert missing.status_code == 404 and "Traceback" not in missing.text
        assert "existe pas" in missing.text
        assert browser.get("/no/such/page").status_code == 404
        # A return address the partner does not own is refused: no open redirection.
        evil = browser.get(
            "/signin",
            params={"partner": "PARTNER-DEMO", "return_to": "http://evil.example/callback"},
        )
        assert evil.status_code == 400
        assert browser.get("/operator").status_code == 403  # not an operator


def test_the_form_waits_when_the_node_says_so(world: dict[str, Any]) -> None:
    node, web = world["node"], world["web"]
    DeclarantStore(node.node.engine).create(FIRM, "Lock", "Ed", PASSWORD)
    identity = prime(node.node.engine, FIRM, "Lock", "Ed")  # a stranger's failures, long ago
    with httpx.Client(base_url=web.url, timeout=HTTP_TIMEOUT) as browser:
        wrong = {"siret": FIRM, "last_name": "Lock", "first_name": "Ed", "password": "nope"}
        answer = browser.post("/signin", data={**wrong, "csrf": _form_token(browser, "/signin")})
        assert answer.status_code == 401 and "Identifiants incorrects" in answer.text
        right = {**wrong, "password": PASSWORD}
        waiting = browser.post("/signin", data={**right, "csrf": _form_token(browser, "/signin")})
        assert waiting.status_code == 429 and "Trop de tentatives" in waiting.text
        assert 1 <= int(waiting.headers["retry-after"]) <= NEXT_WAIT
        SignInLimits(node.node.engine).clear(identity)  # nobody is locked out: an unlock
        signed = browser.post("/signin", data={**right, "csrf": _form_token(browser, "/signin")})
        assert signed.status_code == 303


def test_over_tls_the_session_cookie_is_secure(world: dict[str, Any], tmp_path: Path) -> None:
    issued = TestAuthority(tmp_path).issue("web")
    cert_file, key_file = issued.cert, issued.key
    tls = RunningWeb(world["node"], http_tls_cert=str(cert_file), http_tls_key=str(key_file))
    try:
        page = httpx.get(f"{tls.url}/signin", verify=False, timeout=HTTP_TIMEOUT)
        cookie = page.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
        assert "max-age=31536000" in page.headers["strict-transport-security"]
    finally:
        tls.stop()


def test_an_e_mail_link_opens_once_and_asks_to_sign_in(world: dict[str, Any]) -> None:
    node, web = world["node"], world["web"]
    _notify_the_company(node)  # the same request id as in the browser test: one notification
    store = node.node.notify_store
    (notification, *_) = store.list_for(DEMO_COMPANY.siren, 10, None)
    reference = "web-link-reference-0123456789"
    store.add_link(str(notification["id"]), reference)
    opened = httpx.get(f"{web.url}/n/{reference}", timeout=HTTP_TIMEOUT)
    assert opened.status_code == 200 and "connectez-vous" in opened.text
    assert "Votre taux" not in opened.text  # the link shows nothing without a sign-in
    again = httpx.get(f"{web.url}/n/{reference}", timeout=HTTP_TIMEOUT)
    assert again.status_code == 404
