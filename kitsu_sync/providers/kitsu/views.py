"""The Kitsu OAuth2 adapter and its two views.

Kitsu's server is Doorkeeper: the authorize page is `<oauth>/authorize` and the token endpoint
`<oauth>/token`, both under KITSU_OAUTH_URL. kitsu.app itself enables only the password grant,
so this flow works only where the authorization-code grant is turned on (see ARCHITECTURE.md).
Every request to Kitsu goes through `kitsu_api`, which maps Kitsu's answers to typed errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.oauth2.client import OAuth2Client, OAuth2Error
from allauth.socialaccount.providers.oauth2.views import (
    OAuth2Adapter,
    OAuth2CallbackView,
    OAuth2LoginView,
)
from allauth.utils import get_request_param
from django.conf import settings
from django.http import HttpRequest

from kitsu_sync.kitsu_api import (
    KitsuConnectionError,
    KitsuError,
    KitsuInvalidClient,
    KitsuInvalidGrant,
    KitsuRateLimited,
    KitsuUnauthorized,
    KitsuUnsupportedGrantType,
    Resource,
    TokenResponse,
    authorization_code_grant,
)
from kitsu_sync.kitsu_client import get_kitsu_client, get_transport

# The user attributes kept in SocialAccount.extra_data; the rest of the profile is not needed.
PROFILE_ATTRIBUTES = ("slug", "name", "email", "avatar")
AVATAR_SIZES = ("medium", "small", "large", "tiny", "original")


def pick_avatar_url(avatar: Any) -> str:
    """One URL out of Kitsu's avatar object (sizes keyed by name), or "" when there is none."""
    if not isinstance(avatar, dict):
        return ""
    for size in AVATAR_SIZES:
        url = avatar.get(size)
        if isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 1000:
            return url
    return ""


def profile_data(user: Resource | None) -> dict[str, Any]:
    """Check the answer to `/users?filter[self]=true` and return the profile allauth keeps.

    Kitsu answers an empty list, not 401, when it treats a token as anonymous, so "no user"
    means the token it just issued was not accepted.
    """
    if user is None:
        raise OAuth2Error(
            "Kitsu issued a token but then did not recognise it (it returned no user). "
            "Try linking again; if it keeps happening, Kitsu may be having problems."
        )
    if user.type != "users" or not user.id.isdigit():
        raise OAuth2Error(
            f"Kitsu answered with a {user.type!r} resource instead of your user profile."
        )
    data: dict[str, Any] = {"id": user.id}
    for name in PROFILE_ATTRIBUTES:
        value = user.attr(name)
        if value is not None:
            data[name] = value
    return data


def describe_kitsu_error(error: KitsuError, step: str) -> str:
    """What went wrong `step` (e.g. "exchanging the code"), in words a person can act on."""
    if isinstance(error, KitsuInvalidClient):
        return (
            f"Kitsu does not know this site's OAuth client while {step}: the administrator "
            "should check KITSU_CLIENT_ID and KITSU_CLIENT_SECRET."
        )
    if isinstance(error, KitsuUnsupportedGrantType):
        return (
            f"This Kitsu server does not allow the authorization-code flow ({step}). "
            "The administrator should set KITSU_AUTH_FLOW=password."
        )
    if isinstance(error, KitsuInvalidGrant):
        return (
            f"Kitsu refused the approval while {step} (it was already used, expired, or "
            "belongs to another site). Start linking again."
        )
    if isinstance(error, KitsuUnauthorized):
        return f"Kitsu rejected the new access token while {step}. Start linking again."
    if isinstance(error, KitsuRateLimited):
        return f"Kitsu is limiting requests while {step}. Wait a minute, then try again."
    if isinstance(error, KitsuConnectionError):
        return f"Kitsu could not be reached while {step}. Try again in a few minutes."
    return f"Kitsu failed while {step} ({error.message}). Try again in a few minutes."


@contextmanager
def kitsu_step(step: str) -> Iterator[None]:
    """Turn a Kitsu client error into the OAuth2Error allauth shows on its error page."""
    try:
        yield
    except KitsuError as exc:
        raise OAuth2Error(describe_kitsu_error(exc, step)) from exc


class KitsuOAuth2Adapter(OAuth2Adapter):
    provider_id = "kitsu"

    @property
    def authorize_url(self) -> str:
        return f"{settings.KITSU_OAUTH_URL}/authorize"

    @property
    def access_token_url(self) -> str:
        return f"{settings.KITSU_OAUTH_URL}/token"

    def get_access_token_data(
        self,
        request: HttpRequest,
        app: SocialApp,
        client: OAuth2Client,
        pkce_code_verifier: str | None = None,
    ) -> TokenResponse:
        code = get_request_param(self.request, "code")
        with kitsu_step("exchanging the approval for a token"):
            token = authorization_code_grant(
                get_transport(),
                code=code,
                redirect_uri=client.callback_url,
                client_id=app.client_id,
                client_secret=app.secret,
            )
        self.did_fetch_access_token = True
        return token

    def parse_token(self, data: TokenResponse) -> SocialToken:
        # token_secret holds the refresh token for OAuth2 in allauth's model.
        return SocialToken(
            token=data.access_token,
            token_secret=data.refresh_token or "",
            expires_at=data.expires_at,
        )

    def complete_login(
        self, request: HttpRequest, app: SocialApp, token: SocialToken, **kwargs: Any
    ) -> SocialLogin:
        with kitsu_step("reading your Kitsu profile"):
            user = get_kitsu_client().current_user(token=token.token)
        return self.get_provider().sociallogin_from_response(request, profile_data(user))


oauth2_login = OAuth2LoginView.adapter_view(KitsuOAuth2Adapter)
oauth2_callback = OAuth2CallbackView.adapter_view(KitsuOAuth2Adapter)
