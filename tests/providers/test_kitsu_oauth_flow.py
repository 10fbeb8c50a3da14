"""The authorization-code flow end to end: Revenge -> the sandbox's authorize page -> callback.

The Django test client plays the browser on Revenge's side, `KitsuAuthorizePage` on Kitsu's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.contrib.auth import get_user_model
from django.urls import reverse

from kitsu_sync.models import KitsuToken
from kitsu_sync.services.linking import link_with_password
from tests.web_support import KitsuAuthorizePage, callback_query, site_path

pytestmark = pytest.mark.django_db


def start_link(client: Any, *, process: str = "connect", **params: str) -> str:
    """Press Link Kitsu (or "Sign in with Kitsu"); returns the Kitsu authorize URL."""
    query = urlencode({"process": process, "next": reverse("kitsu_sync:dashboard"), **params})
    response = client.post(f"{reverse('kitsu_login')}?{query}")
    assert response.status_code == 302, response.content
    return response["Location"]


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
    # Someone (a replay, a double submit) exchanged the single-use code first.
    requests.post(
        f"{code_flow.oauth_url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://testserver/accounts/kitsu/login/callback/",
            "client_id": code_flow.client_id,
            "client_secret": code_flow.client_secret,
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
