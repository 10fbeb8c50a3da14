from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from kitsu_sync.kitsu_api import (
    KitsuError,
    KitsuInvalidClient,
    KitsuInvalidGrant,
    KitsuOAuthError,
    KitsuRateLimited,
    KitsuResponseError,
    KitsuServerError,
    KitsuUnsupportedGrantType,
    KitsuUsageError,
    TokenResponse,
    Transport,
    authorization_code_grant,
    authorize_url,
    password_grant,
    refresh_grant,
    revoke_token,
    token_info,
)
from kitsu_sync.kitsu_api.oauth import EXPIRY_SKEW
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import ACCESS_TOKEN, OAUTH_URL, REFRESH_TOKEN

TOKEN_URL = f"{OAUTH_URL}/token"
TOKEN_HEADERS = {
    "Cache-Control": "no-store, no-cache",
    "Content-Type": "application/json; charset=utf-8",
}


def sent_form(mock: responses.RequestsMock, index: int = 0) -> dict[str, list[str]]:
    request = mock.calls[index].request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    return parse_qs(request.body, keep_blank_values=True, strict_parsing=True)


@pytest.fixture
def token_endpoint(mocked: responses.RequestsMock) -> responses.RequestsMock:
    mocked.add("POST", TOKEN_URL, json=payloads.token_body(), headers=TOKEN_HEADERS)
    return mocked


def test_password_grant_returns_the_token_pair_and_its_expiry(
    token_endpoint: responses.RequestsMock, transport: Transport
) -> None:
    token = password_grant(transport, username="spike@example.com", password="swordfish")

    assert token.access_token == ACCESS_TOKEN
    assert token.refresh_token == REFRESH_TOKEN
    assert token.token_type == "Bearer"
    assert token.scope == "public"
    assert token.created_at == datetime(2024, 8, 12, 5, 20, tzinfo=UTC)
    # Kitsu tokens last 30 days, counted from the answer (less a minute's margin).
    assert token.expires_at == token.received_at + timedelta(days=30) - EXPIRY_SKEW
    assert token.expires_at.tzinfo is not None
    assert sent_form(token_endpoint) == {
        "grant_type": ["password"],
        "username": ["spike@example.com"],
        "password": ["swordfish"],
    }


@pytest.mark.parametrize(
    "password",
    ["p@ss w&rd=1+2%3", "ünïcødé/?#;", "a&password=evil", " leading and trailing "],
)
def test_special_character_passwords_are_form_encoded_intact(
    token_endpoint: responses.RequestsMock, transport: Transport, password: str
) -> None:
    password_grant(transport, username="spike", password=password)

    raw = token_endpoint.calls[0].request.body
    assert "&password=evil" not in raw
    assert sent_form(token_endpoint)["password"] == [password]
    assert sent_form(token_endpoint)["username"] == ["spike"]


def test_client_credentials_are_sent_only_when_configured(
    token_endpoint: responses.RequestsMock, transport: Transport
) -> None:
    password_grant(transport, username="spike", password="pw")
    password_grant(
        transport, username="spike", password="pw", client_id="dd03", client_secret="54d7"
    )

    assert "client_id" not in sent_form(token_endpoint, 0)
    assert "client_secret" not in sent_form(token_endpoint, 0)
    assert sent_form(token_endpoint, 1)["client_id"] == ["dd03"]
    assert sent_form(token_endpoint, 1)["client_secret"] == ["54d7"]


def test_refresh_grant_sends_the_refresh_token(
    token_endpoint: responses.RequestsMock, transport: Transport
) -> None:
    token = refresh_grant(transport, refresh_token=REFRESH_TOKEN, client_id="app")

    assert token.access_token == ACCESS_TOKEN
    assert sent_form(token_endpoint) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN],
        "client_id": ["app"],
    }


def test_authorization_code_grant_sends_code_redirect_and_client(
    token_endpoint: responses.RequestsMock, transport: Transport
) -> None:
    authorization_code_grant(
        transport,
        code="c0de",
        redirect_uri="https://revenge.local/accounts/kitsu/login/callback/",
        client_id="app",
        client_secret="s3cret",
    )

    assert sent_form(token_endpoint) == {
        "grant_type": ["authorization_code"],
        "code": ["c0de"],
        "redirect_uri": ["https://revenge.local/accounts/kitsu/login/callback/"],
        "client_id": ["app"],
        "client_secret": ["s3cret"],
    }


def test_authorize_url_carries_every_parameter_encoded() -> None:
    url = authorize_url(
        f"{OAUTH_URL}/",
        client_id="app id",
        redirect_uri="https://revenge.local/cb?x=1",
        state="st&te",
    )

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{OAUTH_URL}/authorize"
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": ["app id"],
        "redirect_uri": ["https://revenge.local/cb?x=1"],
        "state": ["st&te"],
        "scope": ["public"],
    }


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER"])
def test_token_type_is_compared_case_insensitively(token_type: str) -> None:
    token = TokenResponse.from_body(payloads.token_body(token_type=token_type))

    assert token.token_type == token_type


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(payloads.token_body(token_type="mac"), id="mac-token"),
        pytest.param(payloads.token_body(access_token=""), id="empty-access-token"),
        pytest.param({"token_type": "Bearer"}, id="no-access-token"),
        pytest.param(payloads.token_body(expires_in="2592000"), id="string-expiry"),
        pytest.param(payloads.token_body(created_at="yesterday"), id="text-created-at"),
        pytest.param(payloads.token_body(refresh_token=7), id="numeric-refresh-token"),
        # Numbers no token has: refused before they reach date arithmetic (an OverflowError).
        pytest.param(payloads.token_body(expires_in=10**20), id="huge-expiry"),
        pytest.param(payloads.token_body(expires_in=-1), id="negative-expiry"),
        pytest.param(payloads.token_body(created_at=1e20), id="huge-created-at"),
        pytest.param(["not", "an", "object"], id="array"),
    ],
)
def test_a_garbled_token_response_is_a_response_error(body: object) -> None:
    with pytest.raises(KitsuResponseError):
        TokenResponse.from_body(body)


def test_a_non_json_token_response_is_a_response_error(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("POST", TOKEN_URL, body="<html>maintenance</html>", status=200)

    with pytest.raises(KitsuResponseError):
        password_grant(transport, username="spike", password="pw")


def test_a_token_response_without_created_at_starts_now() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    body = payloads.token_body()
    del body["created_at"]

    token = TokenResponse.from_body(body, now=now)

    assert token.created_at == now
    assert token.expires_at == datetime(2025, 1, 31, tzinfo=UTC) - EXPIRY_SKEW


def test_a_reused_token_expires_after_the_seconds_it_has_left_from_now() -> None:
    # Doorkeeper's reuse_access_token: a repeat login answers with the token it already issued,
    # its original created_at, and the seconds left in expires_in.
    now = datetime(2025, 1, 21, tzinfo=UTC)
    issued = datetime(2025, 1, 1, tzinfo=UTC)
    body = payloads.token_body(created_at=int(issued.timestamp()), expires_in=10 * 86400)

    token = TokenResponse.from_body(body, now=now)

    assert token.created_at == issued
    assert token.expires_at == datetime(2025, 1, 31, tzinfo=UTC) - EXPIRY_SKEW


@pytest.mark.parametrize(
    ("code", "status", "error_class"),
    [
        ("invalid_grant", 400, KitsuInvalidGrant),
        ("invalid_client", 401, KitsuInvalidClient),
        ("unsupported_grant_type", 400, KitsuUnsupportedGrantType),
        ("invalid_request", 400, KitsuOAuthError),
        ("invalid_scope", 400, KitsuOAuthError),
        ("unauthorized_client", 401, KitsuOAuthError),
    ],
)
def test_each_oauth_error_raises_its_typed_error_once(
    mocked: responses.RequestsMock,
    transport: Transport,
    code: str,
    status: int,
    error_class: type[KitsuOAuthError],
) -> None:
    mocked.add(
        "POST",
        TOKEN_URL,
        json=payloads.oauth_error_body(code),
        status=status,
        headers=payloads.oauth_error_headers(code),
    )

    with pytest.raises(error_class) as caught:
        password_grant(transport, username="Spike Spiegel", password="pw")

    assert type(caught.value) is error_class
    assert caught.value.code == code
    assert caught.value.status == status
    assert caught.value.message == payloads.INVALID_GRANT_DESCRIPTION
    assert transport.requests_made == 1


def test_a_throttled_login_is_rate_limited_and_not_repeated(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    mocked.add("POST", TOKEN_URL, body=payloads.RACK_ATTACK_BODY, status=429)

    with pytest.raises(KitsuRateLimited):
        password_grant(transport, username="spike", password="pw")

    assert transport.requests_made == 1


def test_a_token_endpoint_5xx_is_not_retried(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    # A refresh token is single-use: repeating a refresh that Kitsu may have applied would
    # present an already-revoked token.
    mocked.add("POST", TOKEN_URL, status=502, body="")

    with pytest.raises(KitsuServerError):
        refresh_grant(transport, refresh_token=REFRESH_TOKEN)

    assert transport.requests_made == 1


def test_missing_credentials_are_refused_before_any_request(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    with pytest.raises(KitsuUsageError):
        password_grant(transport, username="", password="pw")
    with pytest.raises(KitsuUsageError):
        refresh_grant(transport, refresh_token="")

    assert len(mocked.calls) == 0


def test_revoke_token_posts_the_token(mocked: responses.RequestsMock, transport: Transport) -> None:
    mocked.add("POST", f"{OAUTH_URL}/revoke", json={})

    revoke_token(transport, token=ACCESS_TOKEN)

    assert sent_form(mocked) == {"token": [ACCESS_TOKEN]}


def test_token_info_sends_the_bearer_token_and_returns_doorkeepers_view(
    mocked: responses.RequestsMock, transport: Transport
) -> None:
    info = {
        "resource_owner_id": 42603,
        "scope": ["public"],
        "expires_in": 2591000,
        "application": {"uid": None},
        "created_at": payloads.TOKEN_CREATED_AT,
    }
    mocked.add("GET", f"{OAUTH_URL}/token/info", json=info)

    assert token_info(transport, token=ACCESS_TOKEN) == info
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_token_response_repr_hides_both_tokens() -> None:
    token = TokenResponse.from_body(payloads.token_body())

    for text in (repr(token), str(token), f"{token}"):
        assert ACCESS_TOKEN not in text
        assert REFRESH_TOKEN not in text
        assert "<hidden>" in text


def test_password_and_tokens_never_reach_logs_or_errors(
    mocked: responses.RequestsMock,
    transport: Transport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "hunter2-very-secret"
    mocked.add("POST", TOKEN_URL, json=payloads.token_body())
    mocked.add("POST", TOKEN_URL, json=payloads.oauth_error_body("invalid_grant"), status=400)
    mocked.add("POST", TOKEN_URL, body=requests.ConnectionError("reset by peer"))

    token = password_grant(transport, username="spike", password=password)
    errors = []
    for _ in range(2):
        with pytest.raises(KitsuError) as caught:
            refresh_grant(transport, refresh_token=token.refresh_token or "")
        errors.append(caught.value)

    exposed = [caplog.text, repr(token)] + [f"{e!s} {e!r}" for e in errors]
    for secret in (password, ACCESS_TOKEN, REFRESH_TOKEN):
        assert all(secret not in text for text in exposed)
    assert "POST /api/oauth/token -> 200" in caplog.text


def test_authorization_code_grant_sends_the_pkce_verifier_when_given(
    token_endpoint: responses.RequestsMock, transport: Transport
) -> None:
    for verifier in ("v" * 128, None, ""):
        authorization_code_grant(
            transport,
            code="c0de",
            redirect_uri="https://revenge.local/accounts/kitsu/login/callback/",
            client_id="app",
            client_secret="s3cret",
            code_verifier=verifier,
        )

    with_verifier, without, empty = (sent_form(token_endpoint, index) for index in range(3))
    assert with_verifier["code_verifier"] == ["v" * 128]
    assert with_verifier["code"] == ["c0de"]
    # No PKCE: the form is exactly the plain exchange (a server that saw no challenge
    # refuses a verifier it cannot check).
    assert "code_verifier" not in without
    assert "code_verifier" not in empty
