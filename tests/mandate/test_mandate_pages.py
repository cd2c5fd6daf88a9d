"""The mandates page of the dashboard, through the web adapter beside a real node: a declarant
habilitated for payment enters a mandate (a bad IBAN told in French, the form kept), prints it,
acknowledges and revokes it; a declarant without the habilitation is refused the page; forms
without the session's token are refused."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from registry.habilitation.store import HabilitationStore
from registry.mandate.store import MandateStore
from registry.rcd.sirene_synth import siren_at, siret_of
from tests.habilitation.firms import firm_with_clients
from tests.mandate.test_mandates import IBAN, creditor_identifier
from tests.registry_rows import in_registry
from tests.running_node import RunningNode
from tests.running_web import RunningWeb

FIRM, CLIENT = siren_at(64), siren_at(65)
CLIENT_SIRET = siret_of(CLIENT, 1)
REF = f"{CLIENT}-RUM-WEB-1"
PASSWORD = "long password"


@pytest.fixture(scope="module")
def web(node: RunningNode) -> Iterator[RunningWeb]:
    engine = node.node.engine
    in_registry(engine, [siret_of(FIRM, 1), CLIENT_SIRET])
    admin = firm_with_clients(engine, siret_of(FIRM, 1), ("Admin", "Web"), PASSWORD,
                              [CLIENT_SIRET])  # fmt: skip
    store = HabilitationStore(engine)
    store.create_portfolio(admin, "Clients")
    store.change_portfolio(admin, "Clients", add=True, sirets=(CLIENT_SIRET,),
                           services=("MANDATS-SEPA",))  # fmt: skip
    payer = store.create_declarant(admin, siret_of(FIRM, 1), ("Payeuse", "Web"), PASSWORD)
    store.grant(admin, payer, CLIENT_SIRET, "MANDATS-SEPA")
    store.create_declarant(admin, siret_of(FIRM, 1), ("Autre", "Web"), PASSWORD)
    MandateStore(engine, bytes(32)).register_creditor("URSSAF", creditor_identifier("123456"))
    running = RunningWeb(node)
    yield running
    running.stop()


def _signed_in(web: RunningWeb, last_name: str) -> httpx.Client:
    browser = httpx.Client(base_url=web.url)
    form = {"siret": siret_of(FIRM, 1), "last_name": last_name, "first_name": "Web",
            "password": PASSWORD, "csrf": _form_token(browser, "/signin")}  # fmt: skip
    assert browser.post("/signin", data=form).status_code == 303
    return browser


def _form_token(browser: httpx.Client, url: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', browser.get(url).text)
    assert found is not None
    return found.group(1)


def test_a_payer_enters_prints_acknowledges_and_revokes_from_the_page(web: RunningWeb) -> None:
    with contextlib.closing(_signed_in(web, "Payeuse")) as browser:
        page = browser.get("/mandates")
        assert page.status_code == 200 and "Aucun mandat" in page.text
        assert 'href="/mandates"' in browser.get("/dashboard").text
        form = {"debtor": CLIENT_SIRET, "creditor": "URSSAF", "reference": REF,
                "iban": IBAN[:-1] + ("0" if IBAN[-1] != "0" else "1"), "bic": "AGRIFRPP",
                "scheme": "CORE", "signed_on": "2026-10-01"}  # fmt: skip
        assert browser.post("/mandates", data=form).status_code == 403  # no form token
        bad = browser.post("/mandates", data={**form, "csrf": _form_token(browser, "/mandates")})
        assert bad.status_code == 400 and "IBAN n'est pas valide" in html.unescape(bad.text)
        assert f'value="{REF}"' in bad.text and IBAN[:10] not in bad.text  # kept, IBAN not
        token = _form_token(browser, "/mandates")
        done = browser.post("/mandates", data={**form, "iban": IBAN, "csrf": token})
        assert done.status_code == 303 and done.headers["location"] == "/mandates?ok=created"
        listed = html.unescape(browser.get("/mandates?ok=created").text)
        assert REF in listed and "En attente d'acquittement" in listed
        pdf = browser.get(f"/mandates/URSSAF/{REF}.pdf")
        assert pdf.headers["content-type"] == "application/pdf" and pdf.content[:5] == b"%PDF-"
        key = {"creditor": "URSSAF", "reference": REF}
        assert browser.post("/mandates/acknowledge", data={**key, "csrf": token}).status_code == 303
        assert "Acquitté" in browser.get("/mandates").text
        assert browser.post("/mandates/revoke", data={**key, "csrf": token}).status_code == 303
        assert "Révoqué" in browser.get("/mandates").text


def test_the_page_is_refused_without_the_payment_habilitation(web: RunningWeb) -> None:
    with contextlib.closing(_signed_in(web, "Autre")) as browser:
        assert browser.get("/mandates").status_code == 403
        assert 'href="/mandates"' not in browser.get("/dashboard").text
        assert browser.get(f"/mandates/URSSAF/{REF}.pdf").status_code == 403


def test_a_reference_with_a_slash_is_printed_from_the_page(web: RunningWeb) -> None:
    reference = f"{CLIENT}/2026/A?1"
    with contextlib.closing(_signed_in(web, "Payeuse")) as browser:
        token = _form_token(browser, "/mandates")
        form = {"debtor": CLIENT_SIRET, "creditor": "URSSAF", "reference": reference,
                "iban": IBAN, "bic": "AGRIFRPP", "scheme": "CORE", "signed_on": "2026-10-01",
                "csrf": token}  # fmt: skip
        assert browser.post("/mandates", data=form).status_code == 303
        link = f"/mandates/URSSAF/{quote(reference, safe='')}.pdf"
        assert f'href="{link}"' in browser.get("/mandates").text
        pdf = browser.get(link)
        assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
