"""Kitsu's OAuth2 endpoints (Doorkeeper 5): token grants, revocation and token info.

kitsu.app enables only the password and refresh_token grants; the authorization-code helpers
are here for deployments and registered clients that turn that grant on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from kitsu_sync.kitsu_api.errors import KitsuResponseError, KitsuUsageError
from kitsu_sync.kitsu_api.transport import Transport

# Taken off a token's lifetime: the answer left Kitsu a little before it was received.
EXPIRY_SKEW = timedelta(seconds=60)


# A token lasting longer than ten years is not a token Kitsu issues: such a number (1e20, say)
# is a broken answer, refused before it reaches date arithmetic.
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


def _created_at(raw: object, received_at: datetime) -> datetime:
    if raw is None:
        return received_at
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        try:
            return datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise KitsuResponseError(
                "Kitsu's token response has an impossible created_at."
            ) from exc
    raise KitsuResponseError("Kitsu's token response has a non-numeric created_at.")


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    token_type: str
    expires_in: int | None
    scope: str
    created_at: datetime
    # When this answer arrived: the start of `expires_in`.
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return (
            f"TokenResponse(access_token=<hidden>, refresh_token=<hidden>, "
            f"token_type={self.token_type!r}, expires_in={self.expires_in!r}, "
            f"scope={self.scope!r}, created_at={self.created_at.isoformat()!r})"
        )

    __str__ = __repr__

    @property
    def expires_at(self) -> datetime | None:
        """When the access token stops working, less a minute's margin.

        Counted from when the answer arrived, not from `created_at`: Doorkeeper answers a
        password grant that reuses a still-valid token with that token's original
        `created_at` and the seconds it has *left* in `expires_in` (docs/kitsu-api.md §2,
        token reuse).
        """
        if self.expires_in is None:
            return None
        return self.received_at + timedelta(seconds=self.expires_in) - EXPIRY_SKEW

    @classmethod
    def from_body(cls, body: Any, *, now: datetime | None = None) -> TokenResponse:
        """Validate a token endpoint body; anything unexpected is a KitsuResponseError."""
        if not isinstance(body, dict):
            raise KitsuResponseError("Kitsu's token response is not a JSON object.")
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise KitsuResponseError("Kitsu's token response has no access_token.")
        refresh_token = body.get("refresh_token")
        if refresh_token is not None and (not isinstance(refresh_token, str) or not refresh_token):
            raise KitsuResponseError("Kitsu's token response has an invalid refresh_token.")
        token_type = body.get("token_type")
        # Doorkeeper 5 says "Bearer"; Doorkeeper 4 (and Kitsu's old docs) said "bearer".
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise KitsuResponseError(
                f"Kitsu issued a token of type {token_type!r}; only Bearer tokens are supported."
            )
        expires_in = body.get("expires_in")
        if expires_in is not None and (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 0 <= expires_in <= MAX_EXPIRES_IN
        ):
            raise KitsuResponseError(
                "Kitsu's token response has an expires_in that is not a number of seconds "
                f"from 0 to {MAX_EXPIRES_IN}."
            )
        received_at = now or datetime.now(UTC)
        created_at = _created_at(body.get("created_at"), received_at)
        scope = body.get("scope")
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            token_type=token_type,
            expires_in=expires_in,
            scope=scope if isinstance(scope, str) else "",
            created_at=created_at,
            received_at=received_at,
        )


def _with_client(form: dict[str, str], client_id: str, client_secret: str) -> dict[str, str]:
    # Kitsu skips client auth for the password grant, and an unknown client_id is a 401
    # invalid_client, so the pair is sent only when configured.
    if client_id:
        form["client_id"] = client_id
    if client_secret:
        form["client_secret"] = client_secret
    return form


def _token_request(transport: Transport, form: dict[str, str]) -> TokenResponse:
    response = transport.request("POST", "token", form=form, base="oauth")
    return TokenResponse.from_body(response.body)


def password_grant(
    transport: Transport,
    *,
    username: str,
    password: str,
    client_id: str = "",
    client_secret: str = "",
) -> TokenResponse:
    """Log in with the email or profile slug (not the display name) and the password."""
    if not username or not password:
        raise KitsuUsageError(
            "Both the Kitsu login (email or profile slug) and password are needed."
        )
    form = {"grant_type": "password", "username": username, "password": password}
    return _token_request(transport, _with_client(form, client_id, client_secret))


def refresh_grant(
    transport: Transport,
    *,
    refresh_token: str,
    client_id: str = "",
    client_secret: str = "",
) -> TokenResponse:
    """Trade a refresh token for a new pair; Kitsu revokes the old refresh token (single use)."""
    if not refresh_token:
        raise KitsuUsageError("A refresh token is needed.")
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return _token_request(transport, _with_client(form, client_id, client_secret))


def authorization_code_grant(
    transport: Transport,
    *,
    code: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str,
    code_verifier: str | None = None,
) -> TokenResponse:
    """Exchange an authorization code (only where the server enables that grant).

    `code_verifier` is the PKCE secret (RFC 7636) whose challenge went with the authorize
    request; sent only when given, since a server that never saw a challenge needs none.
    """
    if not code:
        raise KitsuUsageError("An authorization code is needed.")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    return _token_request(transport, _with_client(form, client_id, client_secret))


def authorize_url(
    oauth_url: str, *, client_id: str, redirect_uri: str, state: str, scope: str = "public"
) -> str:
    """Where to send a person to approve access (authorization-code flow)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": scope,
        }
    )
    return f"{oauth_url.rstrip('/')}/authorize?{query}"


def revoke_token(
    transport: Transport, *, token: str, client_id: str = "", client_secret: str = ""
) -> None:
    """Revoke an access or refresh token (Doorkeeper answers 200 even for unknown tokens)."""
    form = _with_client({"token": token}, client_id, client_secret)
    transport.request("POST", "revoke", form=form, base="oauth")


def token_info(transport: Transport, *, token: str) -> dict[str, Any]:
    """Doorkeeper's view of a token: resource_owner_id, scope, expires_in, application..."""
    response = transport.request("GET", "token/info", token=token, base="oauth")
    if not isinstance(response.body, dict):
        raise KitsuResponseError("Kitsu's token info is not a JSON object.")
    return response.body
