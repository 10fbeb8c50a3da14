"""Headless Chromium (Debian's package, never a downloaded build) driven by Playwright.

Besides the browser: `sandbox_server` is overridden here with a sandbox that serves its own
posters (no page asks another host for an image), `enter_as` signs a user in on a page without
the sign-in form, `imported_user` is a linked user whose sandbox library was imported, and
`two_way` turns sending changes to Kitsu on. tests/browser/axe.py runs axe-core in a page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import Browser, Page, expect, sync_playwright

from kitsu_sync.sandbox import SandboxConfig
from kitsu_sync.services.sync import run_sync
from tests.sandbox_handle import SandboxHandle

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


# Every page of the context reports a Content-Security-Policy violation to Python at once
# (the listener is in place before any script of the page runs).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI}` +
      ` on ${event.documentURI} (${event.sourceFile || "?"}:${event.lineNumber})`
  );
});
"""


def fail_on_csp_violations(violations: list[str]) -> None:
    """Fail the test that saw a violation: a page the policy breaks is a broken page."""
    if violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(violations))


@pytest.fixture
def csp_violations() -> list[str]:
    """What the policy refused on `page`'s pages: the listener's reports and Chromium's console
    messages about the policy (which also cover a page left before its listener could report)."""
    return []


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, csp_violations: list[str]
) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    context.expose_function("reportCspViolation", lambda text: csp_violations.append(text))
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    context.on(
        "console",
        lambda message: (
            csp_violations.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    fail_on_csp_violations(csp_violations)


@pytest.fixture
def page_without_js(browser: Browser) -> Iterator[Page]:
    """A page of a browser with JavaScript turned off: what is left is plain HTML forms."""
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context.new_page()
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


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    """The suite's sandbox (code grant on), with posters served by the sandbox itself, as in
    the demo (`make run`): pages show real images, and the browser asks no other host."""
    config = SandboxConfig(auth_code_enabled=True, media_url="/media")
    with SandboxHandle.serving(config) as handle:
        yield handle


@pytest.fixture
def enter_as(live_server: Any) -> Callable[[Page, Any], None]:
    """Sign `user` in on `page` with a session cookie (no sign-in form: faster, and the form
    has its own tests)."""

    def enter(page: Page, user: Any) -> None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
        )

    return enter


@pytest.fixture
def imported_user(linked_user: Callable[..., Any], kitsu: Any) -> Callable[..., Any]:
    """A user linked to seeded sandbox user `index` (1 is the demo account), whose Kitsu library
    was imported as the first sync after linking imports it."""

    def make(username: str | None = None, index: int = 1) -> Any:
        user = linked_user(username, index)
        run = run_sync(user_id=user.pk, trigger="link")
        assert run.outcome == "success", run.errors
        return user

    return make


@pytest.fixture
def two_way(kitsu: Any, settings: Any, deliveries: list[Any]) -> list[Any]:
    """Changes made in Revenge are sent to Kitsu (through the outbox, delivered by the test
    with `outbox.deliver`: the Celery task is recorded in the returned list, not sent)."""
    settings.KITSU_SYNC_DIRECTION = "two_way"
    return deliveries
