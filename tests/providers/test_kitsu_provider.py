"""The provider's pieces on their own: the allauth fields, the account's display, the adapter's
URLs and the sign-in page."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers import registry
from django.urls import reverse

from kitsu_sync.kitsu_api import Resource
from kitsu_sync.providers.kitsu.provider import KitsuAccount, KitsuProvider
from kitsu_sync.providers.kitsu.views import KitsuOAuth2Adapter
from kitsu_sync.services.linking import profile_data
from revenge_site.settings import kitsu_socialaccount_providers
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import AVATAR

ROOT = Path(__file__).resolve().parents[2]


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
    settings.SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
        client_id="client", client_secret="secret", flow=flow
    )
    page = client.get(reverse("account_login"))
    assert page.status_code == 200
    assert (reverse("kitsu_login") in page.content.decode()) is listed


def kitsu_provider(rf, settings, provider_settings: dict) -> KitsuProvider:
    settings.SOCIALACCOUNT_PROVIDERS = {"kitsu": provider_settings}
    return get_adapter().get_provider(rf.get("/"), "kitsu")


@pytest.mark.django_db
def test_pkce_is_on_unless_the_settings_turn_it_off(rf, settings):
    configured = kitsu_socialaccount_providers(
        client_id="client", client_secret="secret", flow="authorization_code"
    )["kitsu"]
    without_the_setting = {k: v for k, v in configured.items() if k != "OAUTH_PKCE_ENABLED"}

    for provider_settings in (configured, without_the_setting):
        params = kitsu_provider(rf, settings, provider_settings).get_pkce_params()
        assert set(params) == {"code_challenge", "code_challenge_method", "code_verifier"}
        assert params["code_challenge_method"] == "S256"
        digest = hashlib.sha256(params["code_verifier"].encode("ascii")).digest()
        assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=")
        # RFC 7636 section 4.1: 43 to 128 unreserved characters.
        assert 43 <= len(params["code_verifier"]) <= 128

    turned_off = {**configured, "OAUTH_PKCE_ENABLED": False}
    assert kitsu_provider(rf, settings, turned_off).get_pkce_params() == {}


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("false", False)])
def test_kitsu_oauth_pkce_in_the_environment_reaches_allauth(value, enabled):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revenge_site.settings"}
    env.pop("KITSU_OAUTH_PKCE", None)
    if value is not None:
        env["KITSU_OAUTH_PKCE"] = value
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SOCIALACCOUNT_PROVIDERS['kitsu']['OAUTH_PKCE_ENABLED'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(enabled)
