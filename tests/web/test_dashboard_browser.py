"""The dashboard says everything, in French, in a real headless Chromium (Debian's, driven by
Playwright): a faulty DSN's anomalies with their line, rubric, rule and French message; a good
one's delivery to each organism and their CRMs (the sample organism runs); periods as MM/YYYY; the
trace id; the person's name; deposits page by page; an administrator who grants then revokes a
habilitation from the page (seen through the gRPC API); an empty upload told in place; a wrong
password while signed in told, not a silent sign-out; no horizontal scroll at 390 px; and axe-core
(tools/axe, pinned: `make test` installs it) finds nothing serious or critical. Screenshots go to
the test's tmp_path."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients.client import Client
from clients.sample_organism import SampleOrganism
from registry.dsn.synth import DEMO_COMPANY, broken, generate
from registry.habilitation.store import HabilitationStore
from registry.trust.declarant_store import DeclarantStore
from server.cli.demo_trust import ORGANISMS
from tests.databases import fresh_database
from tests.registry_rows import in_registry
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from tests.web.test_web_adapter import browser  # noqa: F401 -- the module's Chromium fixture

AXE = Path(__file__).parents[2] / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
FIRM = DEMO_COMPANY.emitter_siren + DEMO_COMPANY.emitter_nic
PASSWORD = "dashboard password"
DEPOSIT = "interops.dsn.v1.DepositService"
DELIVERY = "interops.dsn.v1.DeliveryService"
HABILITATION = "interops.habilitation.v1.HabilitationService"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A node on SQLite and its web adapter; the firm's administrator (Alix Durand) with a
    portfolio of the firm's establishment for the AT/MP service, and a declarant (Camille
    Martin) who deposits for the demo company; the routing organisms' encryption keys."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("db")) as url:
        node = RunningNode(url, tmp_path_factory.mktemp("data"))
        web = RunningWeb(node)
        keys = node.encryption_keys()
        in_registry(node.node.engine, [FIRM])
        store = HabilitationStore(node.node.engine)
        admin = store.register_company(FIRM, ("Durand", "Alix"), PASSWORD)
        store.create_portfolio(admin, "Paie")
        store.change_portfolio(admin, "Paie", add=True, sirets=(FIRM,), services=("ATMP",))
        declarant = DeclarantStore(node.node.engine).create(
            FIRM,
            "Martin",
            "Camille",
            PASSWORD,
            [("dsn.deposit", DEMO_COMPANY.siren)],
            sealer=node.node.habilitations.sealer,  # its names kept, for the administrator
        )
        try:
            yield {"node": node, "web": web, "keys": keys, "declarant": declarant}
        finally:
            web.stop()
            node.stop()


def _sign_in(page: Any, url: str, last: str, first: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/signin")
    page.fill("#siret", FIRM)
    page.fill("#last_name", last)
    page.fill("#first_name", first)
    page.fill("#password", password)
    page.click("main button[type=submit]")


def _axe(page: Any, where: str) -> None:
    """axe-core on the page: no violation of impact serious or critical."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    grave = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
             if v["impact"] in ("serious", "critical")]  # fmt: skip
    assert grave == [], f"{where}: {grave}"


def _fits(page: Any, where: str) -> None:
    """No horizontal scroll of the page at the viewport's width."""
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{where} is {width} px wide"


def _deliver_everything(node: RunningNode, keys: dict[str, bytes]) -> None:
    """Each routing organism, as the sample organism, takes its deliveries: a CRM, a receipt."""
    for code, private in keys.items():
        kind = ORGANISMS.get(code, ("", "OC"))[1]
        signer = node.organism(code, kind, rights=("dsn.deliveries",))
        with Client(node.address, credentials=node.credentials(signer, (DELIVERY,))) as system:
            organism = SampleOrganism(system, signer, private)
            for delivery in system.fetch_deliveries(max_deliveries=100):
                assert organism.handle(delivery)


def _wait_for(page: Any, selector: str) -> None:
    page.wait_for_selector(selector, timeout=60_000)


def test_a_declarant_sees_everything_in_french(
    world: dict[str, Any],
    browser: Any,  # noqa: F811 -- the fixture imported above
    tmp_path: Path,
) -> None:
    node, web = world["node"], world["web"]
    if not AXE.exists():
        pytest.fail(f"no {AXE}: run `make test` (it installs tools/axe)")
    context = browser.new_context(locale="fr-FR", bypass_csp=True)
    page = context.new_page()
    _sign_in(page, web.url, "Martin", "Camille")
    page.wait_for_url(f"{web.url}/dashboard")
    assert page.inner_text("#who") == "Camille Martin"
    assert "declarant:" not in page.inner_text("body")
    _axe(page, "empty dashboard")
    # An upload without a file: told next to the form, on the dashboard.
    page.click("#upload button[type=submit]")
    _wait_for(page, "#upload-error")
    assert "Choisissez un fichier" in page.inner_text("#upload-error")
    assert page.url == f"{web.url}/deposits" and page.is_visible("#file")
    # A faulty file (an employee's NIR the norm forbids): the BAN's anomalies, in French.
    faulty = tmp_path / "faux.dsn"
    faulty.write_bytes(broken("forbidden-nir", 2))
    page.set_input_files("#file", str(faulty))
    page.click("#upload button[type=submit]")
    page.wait_for_url(re.compile(re.escape(web.url) + r"/deposits/[0-9a-f]+"))
    _wait_for(page, "#state >> text=Rejetée")
    _wait_for(page, "#anomalies .anomaly")
    anomaly = page.locator("#anomalies .anomaly.blocking", has_text="S21.G00.30.001").first
    assert anomaly.locator(".line").inner_text().isdigit()
    assert anomaly.locator(".rubric").inner_text() == "S21.G00.30.001"
    assert re.fullmatch(r"CCH-[0-9]+", anomaly.locator(".rule").inner_text())
    message = anomaly.locator(".message").inner_text()
    assert message and "rule" not in message.lower() and re.search(r"[a-zé] [a-zé]", message)
    assert "anomalies bloquantes" in page.inner_text("#reason")
    assert page.inner_text("#period") == "03/2026"
    assert re.fullmatch(r"[0-9a-f]{32}", page.inner_text("#trace"))
    page.screenshot(path=str(tmp_path / "deposit-rejected.png"), full_page=True)
    _axe(page, "rejected deposit")
    # A good file: routed, then each organism's delivery acknowledged with its CRM.
    good = tmp_path / "mars.dsn"
    good.write_bytes(b"".join(generate(3, order=801)))
    page.goto(f"{web.url}/dashboard")
    page.set_input_files("#file", str(good))
    page.click("#upload button[type=submit]")
    page.wait_for_url(re.compile(re.escape(web.url) + r"/deposits/[0-9a-f]+"))
    good_id = page.url.rsplit("/", 1)[1]
    _wait_for(page, "#state >> text=Transmise")
    _deliver_everything(node, world["keys"])
    _wait_for(page, "#organisms .crm")  # the page reloads until every organism acknowledged
    deadline = time.monotonic() + 60
    while page.locator("meta[http-equiv=refresh]").count() and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    chain = node.sign_in(FIRM, "Martin", "Camille", PASSWORD, audience=[DEPOSIT])
    with Client(node.address, credentials=chain) as declarant:
        delivered = sorted(d.organism for d in declarant.get_deposit(good_id).deliveries)
    organisms = page.locator("#organisms .organism")
    assert delivered and organisms.count() == len(delivered)
    for i in range(organisms.count()):
        assert "Reçue par l'organisme" in organisms.nth(i).inner_text()
    assert "CRM 60" in page.inner_text("[data-organism=URSSAF]")
    assert "Acceptée" in page.inner_text("[data-organism=URSSAF]")
    assert re.fullmatch(r"[0-9a-f]{32}", page.inner_text("#trace"))
    page.screenshot(path=str(tmp_path / "deposit-routed.png"), full_page=True)
    _axe(page, "routed deposit")
    # Enough deposits for two pages of the dashboard (ten a page).
    with Client(node.address, credentials=chain) as declarant:
        for order in range(900, 910):
            more = tmp_path / f"d{order}.dsn"
            more.write_bytes(b"".join(generate(1, order=order)))
            declarant.submit_deposit(more)
    page.goto(f"{web.url}/dashboard")
    assert page.locator("#deposits tr.deposit").count() == 10
    assert "03/2026" in page.inner_text("#deposits .period >> nth=0")
    assert "01032026" not in page.inner_text("#deposits")
    page.click("text=Plus anciens")
    _wait_for(page, "#deposits")
    older = page.inner_text("#deposits")
    assert "faux.dsn" in older and "mars.dsn" in older
    rejected = page.locator("#deposits tr.deposit.rejected")
    assert "Rejetée" in rejected.first.inner_text()  # in words too, not colour alone
    assert "S21.G00.30.001" in rejected.first.inner_text()  # its anomalies on the dashboard
    assert page.locator(f"[data-id='{good_id}'] .crm").count() >= 1
    page.screenshot(path=str(tmp_path / "dashboard-older.png"), full_page=True)
    page.click("text=Plus récents")
    _wait_for(page, "#deposits")
    assert page.locator("#deposits tr.deposit").count() == 10
    assert "faux.dsn" not in page.inner_text("#deposits")
    _axe(page, "dashboard")
    # A phone's width: no horizontal scroll, and still nothing serious for axe.
    page.set_viewport_size({"width": 390, "height": 844})
    for where in ("/dashboard", f"/deposits/{good_id}", "/signin"):
        page.goto(f"{web.url}{where}")
        _fits(page, where)
        _axe(page, f"{where} at 390 px")
    page.goto(f"{web.url}/dashboard")
    page.screenshot(path=str(tmp_path / "dashboard-390.png"), full_page=True)
    # A wrong password while signed in: said, and the session stays.
    _sign_in(page, web.url, "Martin", "Camille", "not the password")
    _wait_for(page, "#failure")
    assert "Identifiants incorrects" in page.inner_text("#failure")
    assert "restez connecté" in page.inner_text("#failure")
    page.goto(f"{web.url}/dashboard")
    assert page.url == f"{web.url}/dashboard" and page.inner_text("#who") == "Camille Martin"
    context.close()


def test_an_administrator_grants_and_revokes_from_the_page(
    world: dict[str, Any],
    browser: Any,  # noqa: F811 -- the fixture imported above
    tmp_path: Path,
) -> None:
    node, web, declarant = world["node"], world["web"], world["declarant"]
    page = browser.new_context(locale="fr-FR", bypass_csp=True).new_page()
    _sign_in(page, web.url, "Durand", "Alix")
    page.wait_for_url(f"{web.url}/dashboard")
    assert page.inner_text("#who") == "Alix Durand"
    accounts = page.inner_text("#accounts")
    assert "Alix Durand (vous)" in accounts and "Administrateur" in accounts
    assert "Camille Martin" in accounts and f"Compte n° {declarant}" not in accounts

    def held() -> list[tuple[int, str, str]]:
        chain = node.sign_in(FIRM, "Durand", "Alix", PASSWORD, audience=[HABILITATION])
        with Client(node.address, credentials=chain) as admin:
            found = list(admin.list_habilitations(declarant))
        return [(h.account_id, h.siret, h.service) for h in found]

    assert held() == []
    page.select_option("#grant-account", str(declarant))
    page.select_option("#grant-siret", FIRM)
    page.select_option("#grant-service", "ATMP")
    page.click("#grant button[type=submit]")
    _wait_for(page, "#confirmed")
    assert page.inner_text("#confirmed") == "L'habilitation est accordée."
    assert held() == [(declarant, FIRM, "ATMP")]
    row = page.locator(f"[data-habilitation='{declarant}-{FIRM}-ATMP']")
    assert "Compte AT/MP" in row.inner_text()
    _axe(page, "administration")
    page.screenshot(path=str(tmp_path / "administration.png"), full_page=True)
    row.locator("button").click()
    _wait_for(page, "#confirmed")
    assert page.inner_text("#confirmed") == "L'habilitation est retirée."
    assert held() == []
    # A refusal is told in place: a service no portfolio of the company offers.
    page.select_option("#grant-account", str(declarant))
    page.evaluate("document.querySelector('#grant-service').add(new Option('DUCS', 'DUCS'))")
    page.select_option("#grant-service", "DUCS")
    page.click("#grant button[type=submit]")
    _wait_for(page, "#admin-error")
    assert "portefeuille" in page.inner_text("#admin-error")
    page.context.close()
