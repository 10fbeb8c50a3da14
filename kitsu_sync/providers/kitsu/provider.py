from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from allauth.account.models import EmailAddress
from allauth.socialaccount.providers.base import ProviderAccount
from allauth.socialaccount.providers.oauth2.provider import OAuth2Provider
from django.conf import settings

from kitsu_sync.mapping import avatar_url
from kitsu_sync.models import KITSU_PROVIDER_ID
from kitsu_sync.providers.kitsu.views import KitsuOAuth2Adapter


class KitsuAccount(ProviderAccount):
    def get_profile_url(self) -> str | None:
        slug = self.account.extra_data.get("slug")
        if not slug:
            return None
        # The site shares its host with the API (kitsu.app/users/<slug>); no host is hard-coded.
        api = urlsplit(settings.KITSU_API_URL)
        return f"{api.scheme}://{api.netloc}/users/{quote(str(slug))}"

    def get_avatar_url(self) -> str | None:
        return avatar_url(self.account.extra_data.get("avatar")) or None

    def to_str(self) -> str:
        data = self.account.extra_data
        return str(data.get("name") or data.get("slug") or super().to_str())


class KitsuProvider(OAuth2Provider):
    id = KITSU_PROVIDER_ID
    name = "Kitsu"
    account_class = KitsuAccount
    oauth2_adapter_class = KitsuOAuth2Adapter
    # PKCE costs nothing where the server ignores it: Doorkeeper without its PKCE columns
    # drops the challenge and the verifier; with them, it checks one against the other
    # (docs/kitsu-api.md §2). `OAUTH_PKCE_ENABLED` in the provider settings overrides this.
    pkce_enabled_default = True

    def get_default_scope(self) -> list[str]:
        return ["public"]

    def extract_uid(self, data: dict[str, Any]) -> str:
        return str(data["id"])

    def extract_common_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        # `slug` is the profile URL name, which Kitsu accepts as a login; `name` is the
        # display name, which it does not.
        return {"username": data.get("slug"), "email": data.get("email"), "name": data.get("name")}

    def extract_email_addresses(self, data: dict[str, Any]) -> list[EmailAddress]:
        email = data.get("email")
        if not email:
            return []
        return [EmailAddress(email=email, verified=False, primary=True)]


provider_classes = [KitsuProvider]
