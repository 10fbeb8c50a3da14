"""The Content-Security-Policy and the Permissions-Policy, as Chromium applies them.

Every browser test fails on a policy violation (the `page` fixture); here: that an injected
inline script is refused and caught, that the API's docs page (Swagger UI) works under the
policy, and that Chromium reads the Permissions-Policy header without complaint.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import fail_on_csp_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Appends an inline script, then waits (5 s at most) for the page's report that the policy
# refused it: the directive, or null when nothing refused it.
INJECT_INLINE_SCRIPT = """async () => {
  const refused = new Promise((resolve) => {
    document.addEventListener("securitypolicyviolation", (e) => resolve(e.effectiveDirective));
    setTimeout(() => resolve(null), 5000);
  });
  const script = document.createElement("script");
  script.textContent = "window.injectedScriptRan = true;";
  document.body.append(script);
  return await refused;
}"""


def test_an_injected_inline_script_is_refused_and_fails_the_test(
    page: Page, live_server: Any, csp_violations: list[str]
) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("button", name="Sign In")).to_be_visible()
    assert csp_violations == []

    directive = page.evaluate(INJECT_INLINE_SCRIPT)

    assert page.evaluate("() => window.injectedScriptRan === undefined")
    assert directive == "script-src-elem"
    # Both ways of noticing saw it: the page's listener and Chromium's console message.
    reported = [v for v in csp_violations if not v.startswith("console: ")]
    logged = [v for v in csp_violations if v.startswith("console: ")]
    assert any("script-src-elem refused inline on" in v for v in reported), csp_violations
    assert any("script-src" in v for v in logged), csp_violations
    with pytest.raises(pytest.fail.Exception, match="Content-Security-Policy violations"):
        fail_on_csp_violations(csp_violations)
    csp_violations.clear()  # seen and checked: the fixture's own check passes


def test_the_api_docs_page_works_under_the_policy(page: Page, live_server: Any) -> None:
    page.goto(f"{live_server.url}/api/v1/docs")
    # Swagger UI drew the page from the OpenAPI document (fetched by script, same origin).
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Revenge Kitsu sync")
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()


def test_the_admin_works_under_the_policy(
    page: Page, live_server: Any, enter_as: Any, django_user_model: Any
) -> None:
    admin = django_user_model.objects.create_superuser("root", "root@example.test", "x-pass-1")
    enter_as(page, admin)
    for path, heading in [
        ("/admin/", "Site administration"),
        ("/admin/auth/user/", "Select user to change"),
        ("/admin/auth/user/add/", "Add user"),
        ("/admin/kitsu_sync/syncrun/", "Select sync run to view"),
    ]:
        page.goto(f"{live_server.url}{path}")
        expect(page.get_by_role("heading", name=heading)).to_be_visible()


def test_chromium_reads_the_permissions_policy_and_denies_the_features(
    page: Page, live_server: Any
) -> None:
    complaints: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Permissions-Policy" in message.text or "Permissions Policy" in message.text:
            complaints.append(message.text)

    page.on("console", note)
    response = page.goto(f"{live_server.url}/accounts/login/")
    assert response is not None
    assert "camera=()" in response.headers["permissions-policy"]

    denied = page.evaluate(
        """() => ["camera", "microphone", "geolocation", "payment", "usb"].filter(
             (feature) => !document.featurePolicy.allowsFeature(feature))"""
    )
    assert denied == ["camera", "microphone", "geolocation", "payment", "usb"]
    assert complaints == []
