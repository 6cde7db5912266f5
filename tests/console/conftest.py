"""Browser tests of the console: Debian's Chromium driven by Playwright, against a live
``serve`` process on the suite's database, with axe-core injected into every page.

The browser is the system's (``/usr/bin/chromium``, or ``CHROMIUM``); Playwright never
downloads one. Without it the tests fail and say what to install: they never skip.

Every page checked with ``Browsing.check`` is scanned by axe-core (no serious or critical
violation), must fit a phone's width without sideways scrolling, and is photographed at
1280 px and at 390 px into ``build/screenshots/`` (git-ignored) for review. Any browser
console error (which includes every Content-Security-Policy violation) fails the test.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright

from tests.conftest import REPO_ROOT
from tests.helpers.ledger import ORIGIN, write_test_key
from tests.live_service import LiveService

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = REPO_ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
}"""


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the console's browser tests need Chromium at {CHROMIUM} (Debian: "
            "`apt-get install -y chromium`, or set CHROMIUM to its path); none is there"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="package")
async def live(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveService]:
    """One live service for the console's browser tests (the API seeds it in process).

    It holds the run's checkpoint key from the start, so it publishes the verifier key
    and its export worker signs bundles with a key the tests can check them against.
    It stops when the console's tests are over and sends no notices: its workers share
    the database with every later test, and a delivery worker of its own would make
    attempts on their notices that those tests do not expect."""
    here = tmp_path_factory.mktemp("console-live")
    key = write_test_key(here / "checkpoint.pem")
    async with LiveService(
        database_url,
        here,
        REGISTRY_SIGNING_KEY_FILE=str(key),
        REGISTRY_CHECKPOINT_ORIGIN=ORIGIN,
        REGISTRY_OUTBOX_WORKER="false",
    ) as service:
        yield service


@dataclass
class Browsing:
    """One browser tab on the live service, with what it logged."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)
    #: Whether the page runs scripts; axe-core needs them, so without, ``check`` does not scan.
    javascript: bool = True
    #: Statuses of documents the test asks for on purpose (Chromium logs them as errors).
    expected_statuses: set[int] = field(default_factory=set)

    def url(self, path: str) -> str:
        return self.base_url + path

    async def goto(self, path: str) -> int:
        response = await self.page.goto(self.url(path))
        assert response is not None
        return response.status

    async def sign_in(self, key: str) -> None:
        await self.goto("/console/sign-in")
        await self.page.get_by_label("API key").fill(key)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.wait_for_load_state()
        assert "/console/sign-in" not in self.page.url, await self.page.content()

    async def check(self, name: str) -> None:
        """axe-core, phone width and screenshots for the page as it stands now."""
        if not self.javascript:
            return  # the same pages are scanned by the tests that run with scripts
        await self.page.wait_for_load_state("load")
        if not await self.page.evaluate("typeof axe !== 'undefined'"):
            # Evaluated through the DevTools protocol: the page's CSP does not apply to it.
            await self.page.evaluate(AXE.read_text())
        violations: list[dict[str, Any]] = await self.page.evaluate(AXE_RUN)
        assert violations == [], f"axe-core on {name}: {violations}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
        await self.page.set_viewport_size(PHONE)
        try:
            overflow = await self.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways by {overflow} px at phone width"
            violations = await self.page.evaluate(AXE_RUN)
            assert violations == [], f"axe-core on {name} at phone width: {violations}"
            await self.page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
        finally:
            await self.page.set_viewport_size(DESKTOP)

    def unexpected_errors(self) -> list[str]:
        allowed = [re.compile(rf"status of {status} ") for status in sorted(self.expected_statuses)]
        return [e for e in self.errors if not any(a.search(e) for a in allowed)]


async def open_tab(
    browser: Browser, base_url: str, *, javascript: bool = True
) -> AsyncIterator[Browsing]:
    context = await browser.new_context(viewport=DESKTOP, java_script_enabled=javascript)
    page = await context.new_page()
    tab = Browsing(page=page, base_url=base_url, javascript=javascript)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
    try:
        yield tab
    finally:
        await context.close()
    assert tab.unexpected_errors() == [], "the browser logged errors (CSP violations included)"


@pytest.fixture
async def tab(browser: Browser, live: LiveService) -> AsyncIterator[Browsing]:
    """A fresh browser context (no cookies) on the live service."""
    async for opened in open_tab(browser, live.base_url):
        yield opened


@pytest.fixture
async def other_tab(browser: Browser, live: LiveService) -> AsyncIterator[Browsing]:
    """A second, separate browser (its own cookies), for two people at once."""
    async for opened in open_tab(browser, live.base_url):
        yield opened


@pytest.fixture(params=["with-javascript", "without-javascript"])
async def either_tab(
    request: pytest.FixtureRequest, browser: Browser, live: LiveService
) -> AsyncIterator[Browsing]:
    """A page that must work with JavaScript and without: the test runs once each way."""
    javascript = request.param == "with-javascript"
    async for opened in open_tab(browser, live.base_url, javascript=javascript):
        yield opened
