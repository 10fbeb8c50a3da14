"""The Kitsu OAuth2 adapter and its two views.

Kitsu's server is Doorkeeper: the authorize page is `<oauth>/authorize` and the token endpoint
`<oauth>/token`, both under KITSU_OAUTH_URL. kitsu.app itself enables only the password grant,
so this flow works only where the authorization-code grant is turned on
(docs/kitsu-api.md §2).
Every request to Kitsu goes through `kitsu_api`, which maps Kitsu's answers to typed errors.
PKCE (RFC 7636) is on by default (`KITSU_OAUTH_PKCE`): allauth puts the challenge in the
authorize URL and hands the verifier back here for the token request.
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

from kitsu_sync.kitsu_api import KitsuError, TokenResponse, authorization_code_grant
from kitsu_sync.kitsu_client import get_kitsu_client, get_transport
from kitsu_sync.models import KITSU_PROVIDER_ID
from kitsu_sync.services.kitsu_errors import describe_link_error
from kitsu_sync.services.linking import profile_data


@contextmanager
def kitsu_step(step: str) -> Iterator[None]:
    """Turn a Kitsu client error into the OAuth2Error allauth shows on its error page."""
    try:
        yield
    except KitsuError as exc:
        raise OAuth2Error(describe_link_error(exc, step)) from exc


class KitsuOAuth2Adapter(OAuth2Adapter):
    provider_id = KITSU_PROVIDER_ID

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
                # The PKCE secret allauth kept with the state (None when PKCE is off): a
                # server that saw the challenge refuses the code without it.
                code_verifier=pkce_code_verifier,
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
