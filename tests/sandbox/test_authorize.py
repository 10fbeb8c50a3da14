"""The authorization-code flow through the HTML authorize page, driven with `requests`."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from kitsu_sync.sandbox import SandboxConfig

REDIRECT_URI = "http://revenge.test/accounts/kitsu/login/callback/"


class Forms(HTMLParser):
    """Collects each form's action, method, inputs and submit button label."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action"), "fields": {}, "button": None})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value") or ""
        elif tag == "button" and self.forms:
            self.forms[-1]["button"] = attributes.get("value")


def forms_of(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def authorize_params(sandbox, **extra) -> dict:
    return {
        "client_id": sandbox.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "state": "st4te-xyz",
        **extra,
    }


def sign_in(sandbox, browser: requests.Session, login: str, password: str) -> requests.Response:
    page = browser.get(
        f"{sandbox.oauth_url}/authorize", params=authorize_params(sandbox), timeout=10
    )
    assert page.status_code == 200
    (form,) = forms_of(page.text)
    fields = {**form["fields"], "username": login, "password": password}
    return browser.post(urljoin(page.url, form["action"]), data=fields, timeout=10)


def click(sandbox, browser: requests.Session, page: requests.Response, label: str):
    form = next(f for f in forms_of(page.text) if f["button"] == label)
    return browser.post(
        urljoin(page.url, form["action"]), data=form["fields"], allow_redirects=False, timeout=10
    )


def redirect_query(response: requests.Response) -> dict:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_approving_redirects_with_a_code_that_buys_a_token(sandbox):
    browser = requests.Session()
    consent = sign_in(sandbox, browser, "demo", "demo-password")
    assert consent.status_code == 200
    assert "Demo Watcher" in consent.text
    answer = redirect_query(click(sandbox, browser, consent, "Authorize"))
    assert answer["state"] == "st4te-xyz"
    exchange = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": REDIRECT_URI,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }
    token = requests.post(f"{sandbox.oauth_url}/token", data=exchange, timeout=10)
    assert token.status_code == 200
    me = requests.get(
        f"{sandbox.api_url}/users",
        params={"filter[self]": "true"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert me.json()["data"][0]["id"] == "1001"
    replay = requests.post(f"{sandbox.oauth_url}/token", data=exchange, timeout=10)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")


def test_denying_redirects_with_access_denied_and_the_state(sandbox):
    browser = requests.Session()
    consent = sign_in(sandbox, browser, "demo@example.test", "demo-password")
    answer = redirect_query(click(sandbox, browser, consent, "Deny"))
    assert answer["error"] == "access_denied"
    assert answer["state"] == "st4te-xyz"
    assert "code" not in answer


def test_signing_in_with_the_display_name_fails_on_the_page(sandbox):
    page = sign_in(sandbox, requests.Session(), "Demo Watcher", "demo-password")
    assert page.status_code == 401
    assert "not your display name" in page.text
    assert forms_of(page.text)[0]["fields"]["return_to"].startswith("/api/oauth/authorize?")


def test_the_code_must_be_exchanged_with_the_same_redirect_uri_and_client(sandbox):
    browser = requests.Session()
    consent = sign_in(sandbox, browser, "demo", "demo-password")
    code = redirect_query(click(sandbox, browser, consent, "Authorize"))["code"]
    base = {"grant_type": "authorization_code", "code": code}
    no_client = requests.post(
        f"{sandbox.oauth_url}/token", data={**base, "redirect_uri": REDIRECT_URI}, timeout=10
    )
    assert no_client.status_code == 401
    wrong_uri = requests.post(
        f"{sandbox.oauth_url}/token",
        data={
            **base,
            "redirect_uri": "http://evil.test/",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
        timeout=10,
    )
    assert wrong_uri.json()["error"] == "invalid_grant"


def test_a_decision_without_the_session_token_is_refused(sandbox):
    browser = requests.Session()
    consent = sign_in(sandbox, browser, "demo", "demo-password")
    form = next(f for f in forms_of(consent.text) if f["button"] == "Authorize")
    forged = {**form["fields"], "authenticity_token": "forged"}
    response = browser.post(
        f"{sandbox.oauth_url}/authorize", data=forged, allow_redirects=False, timeout=10
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("change", "status"),
    [({"client_id": "unknown"}, 401), ({"redirect_uri": "not a url"}, 400)],
)
def test_bad_client_or_redirect_uri_shows_an_error_page(sandbox, change, status):
    response = requests.get(
        f"{sandbox.oauth_url}/authorize", params=authorize_params(sandbox, **change), timeout=10
    )
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")


def test_an_unsupported_response_type_redirects_back_with_the_error(sandbox):
    response = requests.get(
        f"{sandbox.oauth_url}/authorize",
        params=authorize_params(sandbox, response_type="token"),
        allow_redirects=False,
        timeout=10,
    )
    assert redirect_query(response)["error"] == "unsupported_response_type"


def test_with_the_code_grant_off_authorize_and_the_grant_are_unusable(sandbox_factory):
    sandbox = sandbox_factory(SandboxConfig(auth_code_enabled=False))
    page = requests.get(
        f"{sandbox.oauth_url}/authorize", params=authorize_params(sandbox), timeout=10
    )
    assert page.status_code == 400
    assert "does not support this response type" in page.text
    grant = requests.post(
        f"{sandbox.oauth_url}/token",
        data={
            "grant_type": "authorization_code",
            "code": "anything",
            "redirect_uri": REDIRECT_URI,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
        timeout=10,
    )
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")


def test_registered_redirect_uris_are_enforced(sandbox_factory):
    sandbox = sandbox_factory(
        SandboxConfig(auth_code_enabled=True, redirect_uris=("http://allowed.test/cb",))
    )
    refused = requests.get(
        f"{sandbox.oauth_url}/authorize", params=authorize_params(sandbox), timeout=10
    )
    assert refused.status_code == 400
    allowed = requests.get(
        f"{sandbox.oauth_url}/authorize",
        params=authorize_params(sandbox, redirect_uri="http://allowed.test/cb"),
        timeout=10,
    )
    assert allowed.status_code == 200
