"""The browser policies every response carries: Content-Security-Policy (django-csp, plus the
configured Kitsu's origins) and Permissions-Policy. tests/browser checks that Chromium runs
every page under them with no violation."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.test_deployment import manage, production_env

pytestmark = pytest.mark.django_db

EXPECTED_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "https://media.kitsu.app", "http://127.0.0.1:9"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'", "http://127.0.0.1:9"],
    "frame-ancestors": ["'none'"],
}


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/accounts/signup/", "/", "/health/", "/no-such-page/"]
)
def test_every_response_carries_the_content_security_policy(client: Client, path: str) -> None:
    # The test settings point Kitsu at http://127.0.0.1:9 (tests/test.env).
    assert policy_of(client.get(path)) == EXPECTED_POLICY


def test_signed_in_pages_carry_the_policy_too(client: Client, make_user) -> None:
    client.force_login(make_user("alice"))
    response = client.get("/")
    assert response.status_code == 200
    assert policy_of(response) == EXPECTED_POLICY


def test_the_policy_follows_the_configured_kitsu(client: Client, settings) -> None:
    settings.KITSU_API_URL = "http://127.0.0.1:8001/api/edge"
    settings.KITSU_OAUTH_URL = "https://user:pass@auth.example.test:8443/api/oauth"
    policy = policy_of(client.get("/accounts/login/"))
    # Posters of the sandbox come from its own address; "Link Kitsu" redirects to Kitsu's
    # authorize page, which form-action must allow. No user name or password is repeated.
    assert policy["img-src"] == ["'self'", "https://media.kitsu.app", "http://127.0.0.1:8001"]
    assert policy["form-action"] == ["'self'", "https://auth.example.test:8443"]


def test_the_api_docs_page_alone_allows_data_images(client: Client) -> None:
    docs = policy_of(client.get("/api/v1/docs"))
    assert docs["img-src"] == [
        "'self'",
        "https://media.kitsu.app",
        "data:",
        "http://127.0.0.1:9",
    ]
    assert {name: sources for name, sources in docs.items() if name != "img-src"} == {
        name: sources for name, sources in EXPECTED_POLICY.items() if name != "img-src"
    }
    assert "data:" not in policy_of(client.get("/accounts/login/"))["img-src"]


def test_framing_is_denied_by_both_headers(client: Client) -> None:
    assert client.get("/accounts/login/").headers["X-Frame-Options"] == "DENY"
    assert policy_of(client.get("/accounts/login/"))["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("path", ["/accounts/login/", "/health/", "/api/v1/openapi.json"])
def test_permissions_policy_denies_the_features_the_site_never_uses(
    client: Client, path: str
) -> None:
    header = client.get(path).headers["Permissions-Policy"]
    features = dict(part.strip().split("=") for part in header.split(","))
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "display-capture"):
        assert features[feature] == "()"
    assert set(features.values()) == {"()"}


def test_an_image_source_that_is_not_an_origin_stops_start_up(tmp_path) -> None:
    result = manage(production_env(tmp_path, CSP_IMG_SRC="'unsafe-inline'"), "check")
    assert result.returncode != 0
    assert "CSP_IMG_SRC" in result.stderr


def test_image_sources_come_from_the_environment(tmp_path) -> None:
    env = production_env(tmp_path, CSP_IMG_SRC="https://cdn.example.test,http://10.0.0.5:8001")
    script = (
        "from django.conf import settings\n"
        "print(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src'])"
    )
    result = manage(env, "shell", "--no-imports", "-c", script)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip() == "[\"'self'\", 'https://cdn.example.test', 'http://10.0.0.5:8001']"
    )
