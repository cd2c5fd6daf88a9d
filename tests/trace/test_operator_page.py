"""The operator page shows one exchange in one picture: found by deposit id (or SIRET, chain id,
trace id), its spans as a waterfall, the node's and the organism's, beside the audit records of
the same trace; over HTTP, and in Chromium where it is installed."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.trust.declarant_store import DeclarantStore
from tests.databases import fresh_database
from tests.running_node import RunningNode
from tests.running_web import RunningWeb
from tests.trace.test_exchange_traced import FIRM, _deposit, _handled_by_organism
from tests.web_timeouts import HTTP_TIMEOUT

PASSWORD = "operator pw"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A node and its web adapter, an operator, and a deposit handled by URSSAF's system which
    sent its spans to the node."""
    with fresh_database("sqlite", tmp_path_factory.mktemp("db")) as url:
        node = RunningNode(url, tmp_path_factory.mktemp("data"))
        web = RunningWeb(node)
        try:
            DeclarantStore(node.node.engine).create(FIRM, "Opera", "Tor", PASSWORD,
                                                    [("audit.read", None)])  # fmt: skip
            keys = node.encryption_keys()
            urssaf = node.organism("URSSAF", "URSSAF", rights=("dsn.deliveries", "trace.write"))
            deposit_id = _deposit(node, tmp_path_factory.mktemp("dsn"))
            _handled_by_organism(node, urssaf, keys["URSSAF"])
            yield {"node": node, "web": web, "deposit_id": deposit_id}
        finally:
            web.stop()
            node.stop()


def _sign_in(browser: httpx.Client) -> None:
    page = browser.get("/signin").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = {"siret": FIRM, "last_name": "Opera", "first_name": "Tor", "password": PASSWORD,
            "csrf": token.group(1)}  # fmt: skip
    assert browser.post("/signin", data=form).status_code == 303


def test_the_operator_finds_a_deposits_exchange_as_a_waterfall(world: dict[str, Any]) -> None:
    deposit_id = world["deposit_id"]
    with httpx.Client(base_url=world["web"].url, timeout=HTTP_TIMEOUT) as browser:
        _sign_in(browser)
        page = browser.get("/operator", params={"deposit_id": deposit_id})
        assert page.status_code == 200, page.text
        html = page.text
        assert '<link rel="stylesheet" href="/static/operator.css">' in html
        waterfall = html[html.index('id="waterfall"') : html.index('id="records"')]
        row = (r'<tr class="span[^"]*"><td class="who"[^>]*>([^<]+)</td>'
               r'<td class="name depth-(\d+)" title="[^"]*">([^<]+)</td>')  # fmt: skip
        rows = re.findall(row, waterfall)
        assert ("node", "0", "/interops.dsn.v1.DepositService/SubmitDeposit") in rows
        handled = next(r for r in rows if r[2] == "organism.handle_delivery")
        assert handled[0] == "URSSAF" and int(handled[1]) >= 1
        bars = re.findall(r'<rect x="(\d+)" y="1" width="(\d+)"', waterfall)
        assert len(bars) == len(rows) and all(int(x) + int(w) <= 1000 for x, w in bars)
        assert " ms</td>" in waterfall
        records = html[html.index('id="records"') :]
        assert f"deposit:{deposit_id}" in records and "SubmitDeposit" in records
        trace_id = re.search(r"Trace <code>([0-9a-f]{32})</code>", html)
        assert trace_id is not None
        # The same exchange by its trace id; nothing for a SIRET nobody called about.
        by_trace = browser.get("/operator", params={"trace_id": trace_id.group(1)}).text
        assert by_trace.count('<tr class="span') == len(rows)
        nothing = browser.get("/operator", params={"siret": "73282932000074"}).text
        assert 'id="nothing"' in nothing
        assert browser.get("/static/operator.css").status_code == 200


def test_the_waterfall_in_chromium(world: dict[str, Any], tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    web = world["web"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page()
        page.goto(f"{web.url}/signin")
        page.fill("#siret", FIRM)
        page.fill("#last_name", "Opera")
        page.fill("#first_name", "Tor")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{web.url}/dashboard")
        page.goto(f"{web.url}/operator?deposit_id={world['deposit_id']}")
        handled = page.locator("#waterfall tr", has_text="organism.handle_delivery")
        page.screenshot(path=str(tmp_path / "operator.png"), full_page=True)
        bar = handled.locator("svg.span-bar rect").bounding_box()
        line = handled.locator("svg.span-bar").bounding_box()
        assert bar is not None and line is not None and bar["width"] > 0
        assert line["x"] <= bar["x"] <= line["x"] + line["width"], (bar, line)
        # Indented below its parent: the name cell's text starts further right than a root's.
        root = page.locator("#waterfall td.name.depth-0").first.evaluate(
            "e => getComputedStyle(e).paddingLeft"
        )
        deeper = handled.locator("td.name").evaluate("e => getComputedStyle(e).paddingLeft")
        assert float(deeper.removesuffix("px")) > float(root.removesuffix("px"))
        assert page.locator("#records").inner_text().count("deposit:") >= 1
        page.screenshot(path=str(tmp_path / "operator.png"), full_page=True)
        browser.close()
