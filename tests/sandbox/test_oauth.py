"""The OAuth token endpoint, token use on /api/edge, revoke, token info and the login throttle."""

from __future__ import annotations

import re

import pytest
import requests

from kitsu_sync.sandbox import PUBLIC_CLIENT_ID, PUBLIC_CLIENT_SECRET, SandboxConfig

INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def post_token(sandbox, **form):
    return requests.post(f"{sandbox.oauth_url}/token", data=form, timeout=10)


def password_grant(sandbox, username, password, **extra):
    return post_token(sandbox, grant_type="password", username=username, password=password, **extra)


def test_password_grant_by_email_returns_the_documented_fields(sandbox):
    demo = sandbox.credentials(1)
    response = password_grant(sandbox, demo.email, demo.password)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    body = response.json()
    assert list(body) == [
        "access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at",
    ]  # fmt: skip
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 2_592_000
    assert body["scope"] == "public"
    assert isinstance(body["created_at"], int)
    assert TOKEN_SHAPE.match(body["access_token"])
    assert TOKEN_SHAPE.match(body["refresh_token"])


def test_password_grant_accepts_the_profile_slug(sandbox):
    assert password_grant(sandbox, "demo", "demo-password").status_code == 200
    assert password_grant(sandbox, "DEMO@example.test", "demo-password").status_code == 200


def test_the_display_name_is_not_a_login(sandbox):
    response = password_grant(sandbox, "Demo Watcher", "demo-password")
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": INVALID_GRANT}
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="Kitsu", error="invalid_grant"')


def test_a_wrong_password_is_invalid_grant(sandbox):
    response = password_grant(sandbox, "demo", "wrong")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_a_special_character_password_works_when_form_encoded(sandbox):
    user = sandbox.credentials(2)
    assert user.password == "p&ss=w0rd +%ü"
    assert password_grant(sandbox, user.email, user.password).status_code == 200
    naive = f"grant_type=password&username={user.email}&password={user.password}"
    broken = requests.post(
        f"{sandbox.oauth_url}/token",
        data=naive.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert broken.json()["error"] == "invalid_grant"


def test_a_json_body_is_accepted(sandbox):
    user = sandbox.credentials(2)
    response = requests.post(
        f"{sandbox.oauth_url}/token",
        json={"grant_type": "password", "username": user.slug, "password": user.password},
        timeout=10,
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [("revenge-demo", "revenge-demo-secret"), (PUBLIC_CLIENT_ID, PUBLIC_CLIENT_SECRET), ("", "")],
)
def test_registered_public_or_no_client_may_log_in(sandbox, client_id, client_secret):
    response = password_grant(
        sandbox, "demo", "demo-password", client_id=client_id, client_secret=client_secret
    )
    assert response.status_code == 200


def test_an_unknown_client_is_401_invalid_client(sandbox):
    response = password_grant(
        sandbox, "demo", "demo-password", client_id="nope", client_secret="nope"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert 'error="invalid_client"' in response.headers["WWW-Authenticate"]


def test_client_credentials_may_come_as_http_basic(sandbox):
    response = requests.post(
        f"{sandbox.oauth_url}/token",
        data={"grant_type": "password", "username": "demo", "password": "demo-password"},
        auth=(sandbox.client_id, sandbox.client_secret),
        timeout=10,
    )
    assert response.status_code == 200
    wrong = requests.post(
        f"{sandbox.oauth_url}/token",
        data={"grant_type": "password", "username": "demo", "password": "demo-password"},
        auth=(sandbox.client_id, "wrong"),
        timeout=10,
    )
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "password", "username": "demo", "password": "demo-password",
          "scope": "admin"}, "invalid_scope"),
    ],
)  # fmt: skip
def test_token_endpoint_errors(sandbox, form, error):
    response = post_token(sandbox, **form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def test_refresh_tokens_are_single_use(sandbox):
    first = sandbox.login(1)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }
    second = post_token(sandbox, **form)
    assert second.status_code == 200
    renewed = second.json()
    assert renewed["access_token"] != first["access_token"]
    assert renewed["refresh_token"] != first["refresh_token"]
    replay = post_token(sandbox, **form)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    old = requests.get(
        f"{sandbox.api_url}/anime/1",
        headers={"Authorization": f"Bearer {first['access_token']}"},
        timeout=10,
    )
    assert old.status_code == 401
    fresh = requests.get(
        f"{sandbox.api_url}/anime/1",
        headers={"Authorization": f"Bearer {renewed['access_token']}"},
        timeout=10,
    )
    assert fresh.status_code == 200


def test_refresh_needs_the_client_the_token_was_issued_to(sandbox):
    token = sandbox.login(1)
    without = post_token(sandbox, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert (without.status_code, without.json()["error"]) == (400, "invalid_grant")
    other_client = post_token(
        sandbox,
        grant_type="refresh_token",
        refresh_token=token["refresh_token"],
        client_id=PUBLIC_CLIENT_ID,
        client_secret=PUBLIC_CLIENT_SECRET,
    )
    assert other_client.json()["error"] == "invalid_grant"


def test_refresh_of_a_token_issued_without_client_needs_none(sandbox):
    token = sandbox.login(1, with_client=False)
    renewed = post_token(sandbox, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert renewed.status_code == 200


def test_a_repeat_login_reuses_the_token_with_a_smaller_expires_in(sandbox_factory, fake_clock):
    sandbox = sandbox_factory(SandboxConfig(clock=fake_clock))
    first = sandbox.login(1)
    fake_clock.advance(37)
    second = sandbox.login(1)
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == 2_591_963
    other_client = sandbox.login(1, with_client=False)
    assert other_client["access_token"] != first["access_token"]


def test_expired_tokens_get_401_invalid_token_on_every_edge_request(sandbox):
    token = sandbox.login(1)["access_token"]
    assert sandbox.expire_tokens("1001") >= 1
    for path in ("/anime/1", "/users?filter[self]=true", "/library-entries?filter[user_id]=1001"):
        response = requests.get(
            f"{sandbox.api_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 401
        assert response.json() == {"errors": [{"title": "Invalid token", "status": "401"}]}
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_expired_token_can_still_be_refreshed(sandbox):
    token = sandbox.login(1)
    sandbox.expire_tokens("1001")
    renewed = post_token(
        sandbox,
        grant_type="refresh_token",
        refresh_token=token["refresh_token"],
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
    )
    assert renewed.status_code == 200


def test_tokens_expire_after_thirty_days(sandbox_factory, fake_clock):
    sandbox = sandbox_factory(SandboxConfig(clock=fake_clock))
    token = sandbox.login(1)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    fake_clock.advance(2_592_000 - 1)
    assert requests.get(f"{sandbox.api_url}/anime/1", headers=headers, timeout=10).ok
    fake_clock.advance(1)
    assert (
        requests.get(f"{sandbox.api_url}/anime/1", headers=headers, timeout=10).status_code == 401
    )


def test_revoked_tokens_get_401(sandbox):
    token = sandbox.login(1)["access_token"]
    assert sandbox.revoke_tokens("1001") == 1
    response = requests.get(
        f"{sandbox.api_url}/anime/1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 401


def test_revoke_endpoint_needs_the_issuing_client(sandbox):
    token = sandbox.login(1)["access_token"]
    refused = requests.post(f"{sandbox.oauth_url}/revoke", data={"token": token}, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"] == "unauthorized_client"
    revoked = requests.post(
        f"{sandbox.oauth_url}/revoke",
        data={"token": token},
        auth=(sandbox.client_id, sandbox.client_secret),
        timeout=10,
    )
    assert (revoked.status_code, revoked.json()) == (200, {})
    unknown = requests.post(f"{sandbox.oauth_url}/revoke", data={"token": "x"}, timeout=10)
    assert unknown.status_code == 200


def test_token_info_describes_a_live_token(sandbox):
    token = sandbox.login(1)["access_token"]
    info = requests.get(
        f"{sandbox.oauth_url}/token/info", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    body = info.json()
    assert body["resource_owner_id"] == 1001
    assert body["scope"] == ["public"]
    assert body["application"] == {"uid": sandbox.client_id}
    assert 0 < body["expires_in"] <= 2_592_000
    sandbox.revoke_tokens("1001")
    gone = requests.get(
        f"{sandbox.oauth_url}/token/info", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert gone.status_code == 401
    assert gone.json() == {
        "error": "invalid_token",
        "error_description": "The access token was revoked",
    }


class TestLoginThrottle:
    def test_the_sixteenth_password_login_in_a_minute_is_429_plain_text(
        self, sandbox_factory, fake_clock
    ):
        fake_clock.now = 60 * 29_333_334 + 40.0  # 40 s into a 60 s Rack::Attack window
        sandbox = sandbox_factory(SandboxConfig(clock=fake_clock))
        for _ in range(15):
            assert password_grant(sandbox, "demo", "wrong").status_code == 400
        throttled = password_grant(sandbox, "demo", "demo-password")
        assert throttled.status_code == 429
        assert throttled.headers["Content-Type"] == "text/plain"
        assert throttled.text == "Retry later\n"
        assert "Retry-After" not in throttled.headers
        refresh = post_token(sandbox, grant_type="refresh_token", refresh_token="x")
        assert refresh.status_code == 400  # only password grants are throttled
        fake_clock.advance(20)  # next window
        assert password_grant(sandbox, "demo", "demo-password").status_code == 200

    def test_reset_clears_the_throttle(self, sandbox_factory, fake_clock):
        fake_clock.now = 60 * 29_333_334 + 40.0
        sandbox = sandbox_factory(SandboxConfig(clock=fake_clock, login_throttle_limit=2))
        for _ in range(2):
            password_grant(sandbox, "demo", "wrong")
        assert password_grant(sandbox, "demo", "demo-password").status_code == 429
        sandbox.reset(data=False, stats=False, faults=False, tokens=False)
        assert password_grant(sandbox, "demo", "demo-password").status_code == 200
