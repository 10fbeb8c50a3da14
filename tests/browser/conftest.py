"""Headless Chromium (Debian's package, never a downloaded build) driven by Playwright."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
REVENGE_PASSWORD = "revenge-pass-1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser(django_db_setup: None) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed: run scripts/ensure-chromium")
    # Playwright's sync API keeps an event loop running in this thread while it is open;
    # the ORM calls of the tests and of their database fixtures are ordinary blocking calls.
    environment = pytest.MonkeyPatch()
    environment.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
    environment.undo()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    # Remember the outcome so that `page` can keep a screenshot of a failure.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def sign_in(live_server: Any) -> Callable[[Page, str], None]:
    """Sign a Revenge user (made with the `make_user` default password) in on `page`; they
    land on the dashboard, not yet linked to Kitsu."""

    def sign(page: Page, username: str) -> None:
        page.goto(f"{live_server.url}/")
        # The dashboard needs a signed-in user: allauth's sign-in page, in the site layout.
        expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
        page.fill("input[name=login]", username)
        page.fill("input[name=password]", REVENGE_PASSWORD)
        page.get_by_role("button", name="Sign In").click()
        expect(page.get_by_role("heading", name="Link your Kitsu account")).to_be_visible()

    return sign
