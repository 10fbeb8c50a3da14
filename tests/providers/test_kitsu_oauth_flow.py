"""The authorization-code flow end to end: Revenge -> the sandbox's authorize page -> callback.

The Django test client plays the browser on Revenge's side, `KitsuAuthorizePage` on Kitsu's.
PKCE is on unless a test turns it off; the sandbox then checks the verifier as Doorkeeper does.
allauth's own provider test mixin is not shipped (65.10); the cases it checks are here: login
with PKCE on and off, sign-up through the form, tokens stored (in KitsuToken), a refresh token
kept by a later login that brings none, and the error page.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
import responses
from allauth.socialaccount.internal.statekit import STATES_SESSION_KEY
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.contrib.auth import get_user_model
from django.urls import reverse

from kitsu_sync.models import KitsuToken
from kitsu_sync.services.linking import link_with_password
from revenge_site.settings import kitsu_socialaccount_providers
from tests.web_support import KitsuAuthorizePage, callback_query, site_path

pytestmark = pytest.mark.django_db

CALLBACK_URI = "http://testserver/accounts/kitsu/login/callback/"


def start_link(client: Any, *, process: str = "connect", **params: str) -> str:
    """Press Link Kitsu (or "Sign in with Kitsu"); returns the Kitsu authorize URL."""
    query = urlencode({"process": process, "next": reverse("kitsu_sync:dashboard"), **params})
    response = client.post(f"{reverse('kitsu_login')}?{query}")
    assert response.status_code == 302, response.content
    return response["Location"]


def s256(verifier: str) -> str:
    """RFC 7636's S256 challenge of a verifier: unpadded base64url of its SHA-256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def stashed_state(client: Any) -> dict[str, Any]:
    """The one link allauth has in progress in this browser's session (its PKCE verifier too)."""
    [(state, _stashed_at, _provider)] = client.session[STATES_SESSION_KEY].values()
    return state


def change_stashed_state(client: Any, change: Callable[[dict[str, Any]], None]) -> None:
    session = client.session
    states = session[STATES_SESSION_KEY]
    for state, *_ in states.values():
        change(state)
    session[STATES_SESSION_KEY] = states
    session.save()


@contextmanager
def token_forms_sent(sandbox: Any) -> Iterator[list[dict[str, str]]]:
    """The form of each token request the product sends while inside, as it went over the
    wire (filled on the way out); the sandbox still answers every request for real."""
    forms: list[dict[str, str]] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as wire:
        wire.add(responses.PassthroughResponse("POST", f"{sandbox.oauth_url}/token"))
        wire.add_passthru(sandbox.base_url)
        yield forms
        for call in wire.calls:
            body = call.request.body
            text = body.decode() if isinstance(body, bytes) else str(body)
            forms.append(dict(parse_qsl(text, strict_parsing=True)))


def test_connecting_stores_tokens_for_the_signed_in_user(
    client, make_user, code_flow, sync_requests
):
    user = make_user()
    client.force_login(user)
    authorize_url = start_link(client)
    assert authorize_url.startswith(f"{code_flow.oauth_url}/authorize?")
    assert callback_query(authorize_url)["client_id"] == code_flow.client_id
    assert callback_query(authorize_url)["state"]

    back = KitsuAuthorizePage(code_flow).decide(authorize_url)
    response = client.get(site_path(back))

    assert response.status_code == 302
    assert response["Location"] == reverse("kitsu_sync:dashboard")
    demo = code_flow.credentials(1)
    link = KitsuToken.objects.get(user=user)
    assert link.kitsu_user_id == demo.user_id
    assert link.kitsu_username == demo.slug
    assert link.auth_flow == "authorization_code"
    assert SocialAccount.objects.get(user=user).uid == demo.user_id
    assert not SocialToken.objects.exists()
    assert sync_requests.calls == [{"user_id": user.pk, "trigger": "link", "full": False}]
    assert code_flow.stats()["by_route"]["POST /api/oauth/token"] == 1
    dashboard = client.get(reverse("kitsu_sync:dashboard"))
    assert demo.name in dashboard.content.decode()


def test_signing_up_with_kitsu_creates_the_user_and_stores_tokens(client, code_flow, sync_requests):
    authorize_url = start_link(client, process="login")
    back = KitsuAuthorizePage(code_flow).decide(authorize_url, index=3)
    response = client.get(site_path(back))

    assert response.status_code == 302
    kitsu_user = code_flow.credentials(3)
    user = get_user_model().objects.get(email=kitsu_user.email)
    assert user.username == kitsu_user.slug
    assert not user.has_usable_password()
    assert KitsuToken.objects.get(user=user).kitsu_user_id == kitsu_user.user_id
    assert client.get(reverse("kitsu_sync:dashboard")).wsgi_request.user == user
    assert [call["trigger"] for call in sync_requests.calls] == ["link"]


def test_signing_in_again_with_kitsu_replaces_the_stored_tokens(
    client, make_user, code_flow, sync_requests
):
    user = make_user()
    client.force_login(user)
    page = KitsuAuthorizePage(code_flow)
    client.get(site_path(page.decide(start_link(client))))
    first_token = KitsuToken.objects.get(user=user).access_token
    client.logout()

    response = client.get(site_path(page.decide(start_link(client, process="login"))))

    assert response.status_code == 302
    assert client.get(reverse("kitsu_sync:dashboard")).wsgi_request.user == user
    link = KitsuToken.objects.get(user=user)
    assert link.access_token != first_token
    # A plain sign-in of a healthy link does not start another sync.
    assert [call["trigger"] for call in sync_requests.calls] == ["link"]


def test_linking_again_through_kitsu_repairs_a_link_that_needs_relink(
    client, make_user, code_flow, sync_requests
):
    user = make_user()
    client.force_login(user)
    page = KitsuAuthorizePage(code_flow)
    client.get(site_path(page.decide(start_link(client))))
    KitsuToken.objects.filter(user=user).update(needs_relink=True, relink_reason="rejected")

    client.get(site_path(page.decide(start_link(client))))

    link = KitsuToken.objects.get(user=user)
    assert not link.needs_relink
    assert link.relink_reason == ""
    assert SocialAccount.objects.filter(user=user).count() == 1
    assert [call["trigger"] for call in sync_requests.calls] == ["link", "link"]


def test_a_state_that_does_not_match_the_session_is_refused(client, make_user, code_flow):
    client.force_login(make_user())
    back = KitsuAuthorizePage(code_flow).decide(start_link(client))
    query = callback_query(back)
    query["state"] = "forged-state"

    response = client.get(f"{reverse('kitsu_callback')}?{urlencode(query)}")

    assert response.status_code == 401
    assert "does not match a link started in this browser" in response.content.decode()
    assert not KitsuToken.objects.exists()
    # The code was never exchanged.
    assert code_flow.stats()["by_route"].get("POST /api/oauth/token", 0) == 0


def test_a_callback_nobody_started_is_refused(client, make_user, code_flow):
    client.force_login(make_user())
    response = client.get(f"{reverse('kitsu_callback')}?code=abc&state=xyz")
    assert response.status_code == 401
    assert not KitsuToken.objects.exists()


def test_denying_consent_on_kitsu_links_nothing(client, make_user, code_flow):
    client.force_login(make_user())
    back = KitsuAuthorizePage(code_flow).decide(start_link(client), approve=False)
    assert callback_query(back)["error"] == "access_denied"

    response = client.get(site_path(back), follow=True)

    assert response.redirect_chain[-1][0] == reverse("socialaccount_login_cancelled")
    assert "You did not approve access on Kitsu" in response.content.decode()
    assert not KitsuToken.objects.exists()
    assert not SocialAccount.objects.exists()


def test_an_error_kitsu_sends_back_from_its_authorize_page_is_shown(client, make_user, code_flow):
    client.force_login(make_user())
    # An extra scope Kitsu does not know: its authorize page redirects back with invalid_scope.
    authorize_url = start_link(client, scope="bogus")
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302

    response = client.get(site_path(answer.headers["Location"]))

    assert response.status_code == 401
    assert "Kitsu refused the request (invalid_scope)" in response.content.decode()
    assert not KitsuToken.objects.exists()


def _approved_callback(client: Any, user: Any, sandbox: Any) -> str:
    client.force_login(user)
    return site_path(KitsuAuthorizePage(sandbox).decide(start_link(client)))


def test_a_used_approval_code_is_reported_at_the_token_step(client, make_user, code_flow):
    callback = _approved_callback(client, make_user(), code_flow)
    code = callback_query(callback)["code"]
    # A double submit from this same site exchanged the single-use code first (with PKCE,
    # only the holder of the verifier kept in this browser's session can).
    requests.post(
        f"{code_flow.oauth_url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK_URI,
            "client_id": code_flow.client_id,
            "client_secret": code_flow.client_secret,
            "code_verifier": stashed_state(client)["pkce_code_verifier"],
        },
        timeout=10,
    ).raise_for_status()

    response = client.get(callback)

    assert response.status_code == 401
    assert "Kitsu refused the approval while exchanging" in response.content.decode()
    assert not KitsuToken.objects.exists()


def test_a_kitsu_failure_at_the_token_step_is_reported(client, make_user, code_flow):
    callback = _approved_callback(client, make_user(), code_flow)
    code_flow.set_faults([{"kind": "status", "status": 503, "path": "/api/oauth/token"}])

    response = client.get(callback)

    assert response.status_code == 401
    body = response.content.decode()
    assert "Kitsu failed while exchanging the approval for a token" in body
    assert "HTTP 503" in body
    assert not KitsuToken.objects.exists()


def test_unreachable_kitsu_at_the_token_step_is_reported(
    kitsu_at, client, make_user, code_flow, refused_url
):
    callback = _approved_callback(client, make_user(), code_flow)
    url = refused_url
    kitsu_at(api_url=f"{url}/api/edge", oauth_url=f"{url}/api/oauth")

    response = client.get(callback)

    assert response.status_code == 401
    assert "Kitsu could not be reached while exchanging" in response.content.decode()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "rejected the new access token"), (500, "Kitsu failed while reading your Kitsu")],
)
def test_a_kitsu_failure_at_the_profile_step_is_reported(
    client, make_user, code_flow, status, expected
):
    callback = _approved_callback(client, make_user(), code_flow)
    code_flow.set_faults(
        [{"kind": "status", "status": status, "path": "/api/edge/users", "count": None}]
    )

    response = client.get(callback)

    assert response.status_code == 401
    assert expected in response.content.decode()
    assert not KitsuToken.objects.exists()
    assert not SocialAccount.objects.exists()


def test_connecting_a_kitsu_account_that_belongs_to_another_user_leaves_it_alone(
    client, make_user, code_flow, sync_requests
):
    demo = code_flow.credentials(1)
    owner = make_user()
    link_with_password(user=owner, login=demo.login, password=demo.password)
    owner_token = KitsuToken.objects.get(user=owner).access_token
    intruder = make_user()

    response = client.get(_approved_callback(client, intruder, code_flow), follow=True)

    assert "already connected to a different account" in response.content.decode()
    assert not KitsuToken.objects.filter(user=intruder).exists()
    assert KitsuToken.objects.get(user=owner).access_token == owner_token
    assert SocialAccount.objects.get(uid=demo.user_id).user == owner


# --- PKCE -----------------------------------------------------------------------------------


def test_linking_proves_the_code_with_the_pkce_verifier(client, make_user, code_flow):
    user = make_user()
    client.force_login(user)
    authorize_url = start_link(client)
    query = callback_query(authorize_url)
    assert query["code_challenge_method"] == "S256"
    back = KitsuAuthorizePage(code_flow).decide(authorize_url)
    code = callback_query(back)["code"]
    # The sandbox, like Doorkeeper with its PKCE columns, kept the challenge with the code.
    assert code_flow.store.tokens.find_grant(code).code_challenge == query["code_challenge"]

    with token_forms_sent(code_flow) as forms:
        response = client.get(site_path(back))

    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == reverse("kitsu_sync:dashboard")
    [form] = forms
    assert form["code"] == code
    assert s256(form["code_verifier"]) == query["code_challenge"]
    assert KitsuToken.objects.get(user=user).kitsu_user_id == code_flow.credentials(1).user_id


def test_linking_without_pkce_sends_neither_challenge_nor_verifier(
    client, settings, make_user, code_flow
):
    settings.SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
        client_id=code_flow.client_id,
        client_secret=code_flow.client_secret,
        flow="authorization_code",
        pkce=False,
    )
    user = make_user()
    client.force_login(user)
    authorize_url = start_link(client)
    assert "code_challenge" not in callback_query(authorize_url)
    assert "code_challenge_method" not in callback_query(authorize_url)
    back = KitsuAuthorizePage(code_flow).decide(authorize_url)

    with token_forms_sent(code_flow) as forms:
        response = client.get(site_path(back))

    assert response.status_code == 302, response.content.decode()
    [form] = forms
    assert "code_verifier" not in form
    assert KitsuToken.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda state: state.update(pkce_code_verifier="x" * 128),
            "Kitsu refused the approval while exchanging the approval for a token",
        ),
        (
            lambda state: state.pop("pkce_code_verifier"),
            "Missing required parameter: code_verifier.",
        ),
    ],
    ids=["wrong verifier", "no verifier"],
)
def test_a_code_kitsu_will_not_release_without_its_verifier_links_nothing(
    client, make_user, code_flow, change, expected
):
    callback = _approved_callback(client, make_user(), code_flow)
    verifier = stashed_state(client)["pkce_code_verifier"]
    change_stashed_state(client, change)

    response = client.get(callback)

    assert response.status_code == 401
    page = response.content.decode()
    assert expected in page
    assert verifier not in page
    assert not KitsuToken.objects.exists()
    assert not SocialAccount.objects.exists()
    # One refused exchange, and no token to read a profile with.
    routes = code_flow.stats()["by_route"]
    assert routes["POST /api/oauth/token"] == 1
    assert "GET /api/edge/users" not in routes


def test_an_intercepted_code_is_worthless_without_the_verifier(client, make_user, code_flow):
    user = make_user()
    callback = _approved_callback(client, user, code_flow)
    stolen = {
        "grant_type": "authorization_code",
        "code": callback_query(callback)["code"],
        "redirect_uri": CALLBACK_URI,
        # Even with the client's secret (a leaked config): the verifier never left the session.
        "client_id": code_flow.client_id,
        "client_secret": code_flow.client_secret,
    }
    token_url = f"{code_flow.oauth_url}/token"
    without = requests.post(token_url, data=stolen, timeout=10)
    guessed = requests.post(token_url, data={**stolen, "code_verifier": "y" * 64}, timeout=10)
    assert (without.status_code, without.json()["error"]) == (400, "invalid_request")
    assert (guessed.status_code, guessed.json()["error"]) == (400, "invalid_grant")

    response = client.get(callback)

    assert response.status_code == 302
    assert KitsuToken.objects.filter(user=user).exists()


# --- tokens, sign-up and the error page (what allauth's provider test mixin checks) ---------


def test_the_stored_tokens_are_the_pair_kitsu_issued(client, make_user, code_flow):
    user = make_user()
    client.force_login(user)
    client.get(site_path(KitsuAuthorizePage(code_flow).decide(start_link(client))))

    link = KitsuToken.objects.get(user=user)
    issued = code_flow.store.tokens.find(link.access_token)
    assert issued is not None
    assert issued.user_id == int(code_flow.credentials(1).user_id)
    assert link.refresh_token == issued.refresh_token
    info = requests.get(
        f"{code_flow.oauth_url}/token/info",
        headers={"Authorization": f"Bearer {link.access_token}"},
        timeout=10,
    )
    assert info.status_code == 200
    assert info.json()["application"] == {"uid": code_flow.client_id}
    # allauth's token table stays empty: SOCIALACCOUNT_STORE_TOKENS is off.
    assert not SocialToken.objects.exists()


def test_a_later_login_without_a_refresh_token_keeps_the_stored_one(
    client, make_user, code_flow, sync_requests
):
    user = make_user()
    client.force_login(user)
    page = KitsuAuthorizePage(code_flow)
    client.get(site_path(page.decide(start_link(client))))
    first = KitsuToken.objects.get(user=user)
    client.logout()
    callback = site_path(page.decide(start_link(client, process="login")))
    # A Doorkeeper answer with no refresh token (Doorkeeper leaves blank fields out, and a
    # server without `use_refresh_token` issues none), for a token the sandbox knows.
    fresh = code_flow.login(1, with_client=False)["access_token"]
    answer = {
        "access_token": fresh,
        "token_type": "Bearer",
        "expires_in": 7200,
        "scope": "public",
        "created_at": int(time.time()),
    }

    with responses.RequestsMock() as wire:
        wire.add("POST", f"{code_flow.oauth_url}/token", json=answer)
        wire.add_passthru(code_flow.api_url)
        response = client.get(callback)

    assert response.status_code == 302, response.content.decode()
    assert client.get(reverse("kitsu_sync:dashboard")).wsgi_request.user == user
    link = KitsuToken.objects.get(user=user)
    assert link.access_token == fresh
    assert link.refresh_token == first.refresh_token
    assert link.token_expires_at < first.token_expires_at


def test_signing_up_through_the_form_stores_the_tokens(client, settings, code_flow, sync_requests):
    settings.SOCIALACCOUNT_AUTO_SIGNUP = False
    kitsu_user = code_flow.credentials(3)
    back = KitsuAuthorizePage(code_flow).decide(start_link(client, process="login"), index=3)

    response = client.get(site_path(back))

    assert response.status_code == 302
    assert response["Location"] == reverse("socialaccount_signup")
    form = client.get(reverse("socialaccount_signup"))
    assert form.status_code == 200
    assert not KitsuToken.objects.exists()
    signed_up = client.post(
        reverse("socialaccount_signup"),
        {"email": "someone@revenge.test", "username": "someone"},
    )
    assert signed_up.status_code == 302, signed_up.content.decode()
    user = get_user_model().objects.get(username="someone")
    assert not user.has_usable_password()
    link = KitsuToken.objects.get(user=user)
    assert link.kitsu_user_id == kitsu_user.user_id
    assert code_flow.store.tokens.find(link.access_token) is not None
    account = SocialAccount.objects.get(user=user).get_provider_account()
    assert account.to_str() == kitsu_user.name
    assert account.get_profile_url().endswith(f"/users/{kitsu_user.slug}")
    assert [call["trigger"] for call in sync_requests.calls] == ["link"]


def test_the_callback_without_a_started_link_shows_the_error_page(client, code_flow):
    response = client.get(reverse("kitsu_callback"))

    assert response.status_code == 401
    assert "socialaccount/authentication_error.html" in [t.name for t in response.templates]
    assert not KitsuToken.objects.exists()
    assert code_flow.stats()["total"] == 0
