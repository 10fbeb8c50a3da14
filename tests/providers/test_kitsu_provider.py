"""The provider's pieces on their own: the allauth fields, the account's display, the adapter's
URLs and the sign-in page."""

from __future__ import annotations

import pytest
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers import registry
from django.urls import reverse

from kitsu_sync.kitsu_api import Resource
from kitsu_sync.providers.kitsu.provider import KitsuAccount, KitsuProvider
from kitsu_sync.providers.kitsu.views import KitsuOAuth2Adapter
from kitsu_sync.services.linking import profile_data
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import AVATAR


def kitsu_user(**attributes) -> Resource:
    return Resource(type="users", id="1001", attributes=payloads.demo_user_attributes(**attributes))


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
