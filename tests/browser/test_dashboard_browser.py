"""The dashboard in Chromium: login, a circuit opening under faults, an admin reset, the audit
filter, and no secret anywhere in the pages. Screenshots go to ``test-artifacts/browser/``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from connectors.server.app import create_app
from connectors.server.demo import DEMO_TENANTS, DemoEnvironment, build_demo
from tests.server._live import live_server

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CANARY = "canary-browser-s3cr3t-91c0ffee"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Site:
    env: DemoEnvironment
    url: str
    browser: Browser

    @property
    def admin_token(self) -> str:
        return self.env.admin_tokens["acme-corp"]

    def secrets(self) -> list[str]:
        """Every secret value the pages must never show."""
        app = self.env.salesforce.config.connected_apps[0]
        return [CANARY, app.consumer_secret, *self.env.admin_tokens.values()]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = tmp_path_factory.mktemp("browser")

    async def prepare() -> DemoEnvironment:
        env = await build_demo(
            data, sf_faults="", slack_faults="", probe_interval=None, breaker_threshold=3
        )
        for tenant in DEMO_TENANTS:
            await env.hub.services.credentials.put(
                tenant, "canary", {"value": CANARY}, metadata={"kind": "canary"}, actor="test"
            )
        await env.hub.aclose()
        return env

    env = asyncio.run(prepare())
    app = create_app(env.hub, settings=env.settings)
    try:
        with live_server(app) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            try:
                yield Site(env, url, browser)
            finally:
                browser.close()
    finally:
        env.close()


def logged_in(site: Site, token: str) -> Page:
    page = site.browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(site.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page.locator("#tenant")).to_have_text("acme-corp")
    return page


def assert_no_secret(site: Site, page: Page) -> None:
    html = page.content()
    for value in site.secrets():
        assert value not in html


def api(site: Site, method: str, path: str) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {site.admin_token}"}
    with httpx2.Client(base_url=site.url, headers=headers, timeout=60) as client:
        return client.request(method, path)


def test_login_and_the_grid_show_the_tenant_connectors(site: Site) -> None:
    page = logged_in(site, site.admin_token)
    expect(page.locator("#card-salesforce")).to_be_visible()
    expect(page.locator("#card-slack")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "01-grid.png"), full_page=True)
    assert_no_secret(site, page)
    page.close()


def test_a_failing_provider_opens_the_circuit_and_an_admin_resets_it(site: Site) -> None:
    site.env.sf_faults.set("503=1.0:paths=/services/data/*")
    try:
        for _ in range(3):  # each check: 2 attempts that fail; the breaker opens at 3
            assert api(site, "POST", "/api/connectors/salesforce/check").status_code == 200
        assert api(site, "GET", "/api/connectors/health").status_code == 503
        page = logged_in(site, site.admin_token)
        card = page.locator("#card-salesforce")
        expect(card).to_have_attribute("data-status", "unhealthy")
        expect(card.locator(".circuit")).to_contain_text("open")
        expect(page.locator("#card-slack")).not_to_have_attribute("data-status", "unhealthy")
        page.screenshot(path=str(ARTIFACTS / "02-grid-circuit-open.png"), full_page=True)
        page.click("text=Circuit breakers")
        row = page.locator("#circuit-salesforce")
        expect(row).to_have_attribute("data-state", "open")
        page.screenshot(path=str(ARTIFACTS / "03-circuits-open.png"), full_page=True)
        site.env.sf_faults.clear()
        row.locator("button", has_text="Reset").click()
        expect(page.locator("#circuit-salesforce")).to_have_attribute("data-state", "closed")
        page.screenshot(path=str(ARTIFACTS / "04-circuits-reset.png"), full_page=True)
        assert_no_secret(site, page)
        page.close()
    finally:
        site.env.sf_faults.clear()
    audit = api(site, "GET", "/api/audit?kind=circuit.reset").json()["events"]
    assert audit
    assert audit[0]["connector"] == "salesforce"


def test_the_audit_filter_narrows_the_events(site: Site) -> None:
    site.env.sf_faults.set("503=1.0:paths=/services/data/*")
    try:
        api(site, "POST", "/api/connectors/salesforce/circuit/reset")
        api(site, "POST", "/api/connectors/salesforce/check")
    finally:
        site.env.sf_faults.clear()
    api(site, "POST", "/api/connectors/slack/check")
    page = logged_in(site, site.admin_token)
    page.click("text=Audit")
    expect(page.locator("table.events tbody tr").first).to_be_visible()
    page.select_option("select[name=outcome]", "failure")
    page.select_option("select[name=connector]", "salesforce")
    page.click("button:has-text('Filter')")
    expect(page).to_have_url(re.compile(r"outcome=failure"))
    outcomes = page.locator("table.events td.outcome").all_inner_texts()
    assert outcomes
    assert set(outcomes) == {"failure"}
    connectors = page.locator("table.events tbody tr td:nth-child(4)").all_inner_texts()
    assert set(connectors) == {"salesforce"}
    page.screenshot(path=str(ARTIFACTS / "05-audit-filtered.png"), full_page=True)
    assert_no_secret(site, page)
    page.close()


def test_no_page_shows_a_secret(site: Site) -> None:
    page = logged_in(site, site.admin_token)
    for path in ("/", "/circuits", "/audit", "/connectors/salesforce", "/connectors/slack"):
        page.goto(site.url + path)
        expect(page.locator("#tenant")).to_have_text("acme-corp")
        assert_no_secret(site, page)
    page.screenshot(path=str(ARTIFACTS / "06-connector.png"), full_page=True)
    page.close()
