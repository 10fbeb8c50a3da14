"""The provider's pieces on their own: profile checking, error wording, account display."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers import registry
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.urls import reverse

from kitsu_sync.kitsu_api import (
    KitsuInvalidClient,
    KitsuInvalidGrant,
    KitsuRateLimited,
    KitsuServerError,
    KitsuTimeout,
    KitsuUnauthorized,
    KitsuUnsupportedGrantType,
    Resource,
)
from kitsu_sync.mapping import avatar_url
from kitsu_sync.providers.kitsu.provider import KitsuAccount, KitsuProvider
from kitsu_sync.providers.kitsu.views import KitsuOAuth2Adapter
from kitsu_sync.services.kitsu_errors import describe_link_error
from kitsu_sync.services.linking import profile_data

AVATAR = {
    "tiny": "https://media.kitsu.app/users/avatars/1/tiny.jpeg",
    "medium": "https://media.kitsu.app/users/avatars/1/medium.jpeg",
    "meta": {"dimensions": {}},
}


def kitsu_user(**attributes) -> Resource:
    base = {
        "slug": "demo",
        "name": "Demo Watcher",
        "email": "demo@example.test",
        "avatar": AVATAR,
        "about": "not kept",
        "followersCount": 3,
    }
    return Resource(type="users", id="1001", attributes={**base, **attributes})


def test_profile_data_keeps_the_id_and_the_few_attributes_needed():
    assert profile_data(kitsu_user()) == {
        "id": "1001",
        "slug": "demo",
        "name": "Demo Watcher",
        "email": "demo@example.test",
        "avatar": AVATAR,
    }


def test_profile_data_leaves_out_attributes_kitsu_hides():
    # email is a self-only attribute: absent when Kitsu does not treat the caller as the user.
    data = profile_data(Resource(type="users", id="7", attributes={"slug": "x", "avatar": None}))
    assert data == {"id": "7", "slug": "x"}


def test_profile_data_says_so_when_kitsu_treats_the_new_token_as_anonymous():
    # Kitsu answers filter[self] with an empty list, not 401, for a token it does not know.
    with pytest.raises(OAuth2Error, match="did not recognise it"):
        profile_data(None)


@pytest.mark.parametrize(
    "resource",
    [Resource(type="anime", id="1"), Resource(type="users", id=""), Resource(type="users", id="x")],
)
def test_profile_data_refuses_something_that_is_not_a_kitsu_user(resource):
    with pytest.raises(OAuth2Error):
        profile_data(resource)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (KitsuInvalidClient("x", code="invalid_client", status=401), "KITSU_CLIENT_ID"),
        (
            KitsuUnsupportedGrantType("x", code="unsupported_grant_type", status=400),
            "KITSU_AUTH_FLOW=password",
        ),
        (KitsuInvalidGrant("x", code="invalid_grant", status=400), "Start linking again"),
        (KitsuUnauthorized("Invalid token", status=401), "rejected the new access token"),
        (KitsuRateLimited("slow down", status=429), "Wait a minute"),
        (KitsuTimeout("no answer"), "could not be reached"),
        (KitsuServerError("Kitsu failed with HTTP 502.", status=502), "HTTP 502"),
    ],
)
def test_kitsu_errors_are_described_with_the_step_and_what_to_do(error, expected):
    text = describe_link_error(error, "reading your Kitsu profile")
    assert expected in text
    assert "reading your Kitsu profile" in text


def test_avatar_url_prefers_the_medium_size_and_ignores_junk():
    assert avatar_url(AVATAR) == AVATAR["medium"]
    assert avatar_url({"tiny": AVATAR["tiny"]}) == AVATAR["tiny"]
    assert avatar_url({"medium": "javascript:alert(1)"}) == ""
    assert avatar_url(None) == ""
    assert avatar_url("https://not-an-object") == ""


def test_the_provider_maps_the_profile_to_allauth_fields():
    provider_class = registry.get_class("kitsu")
    assert provider_class is KitsuProvider
    provider = KitsuProvider.__new__(KitsuProvider)
    data = profile_data(kitsu_user())

    assert provider.extract_uid(data) == "1001"
    assert provider.extract_common_fields(data) == {
        "username": "demo",
        "email": "demo@example.test",
        "name": "Demo Watcher",
    }
    [address] = provider.extract_email_addresses(data)
    assert address.email == "demo@example.test"
    assert not address.verified
    assert provider.extract_email_addresses({"id": "1"}) == []
    assert provider.get_default_scope() == ["public"]


def test_the_account_shows_name_avatar_and_a_profile_url_on_the_configured_host(settings):
    settings.KITSU_API_URL = "https://kitsu.example.org/api/edge"
    account = KitsuAccount(
        SocialAccount(provider="kitsu", uid="1001", extra_data=profile_data(kitsu_user()))
    )

    assert account.to_str() == "Demo Watcher"
    assert account.get_avatar_url() == AVATAR["medium"]
    assert account.get_profile_url() == "https://kitsu.example.org/users/demo"


def test_the_adapter_uses_the_configured_oauth_url(settings, rf):
    settings.KITSU_OAUTH_URL = "https://kitsu.example.org/api/oauth"
    adapter = KitsuOAuth2Adapter(rf.get("/"))
    assert adapter.authorize_url == "https://kitsu.example.org/api/oauth/authorize"
    assert adapter.access_token_url == "https://kitsu.example.org/api/oauth/token"


def test_the_urls_are_allauths_one_liner():
    assert reverse("kitsu_login") == "/accounts/kitsu/login/"
    assert reverse("kitsu_callback") == "/accounts/kitsu/login/callback/"


@pytest.mark.django_db
@pytest.mark.parametrize(("flow", "listed"), [("password", False), ("authorization_code", True)])
def test_the_sign_in_page_offers_kitsu_only_with_the_code_flow(client, settings, flow, listed):
    from revenge_site.settings import kitsu_socialaccount_providers

    settings.SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
        client_id="client", client_secret="secret", flow=flow
    )
    page = client.get(reverse("account_login"))
    assert page.status_code == 200
    assert (reverse("kitsu_login") in page.content.decode()) is listed
