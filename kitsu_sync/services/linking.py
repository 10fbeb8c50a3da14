"""Linking a Revenge user to a Kitsu account, by either flow, through allauth's connect path.

The redirect flow is allauth's own (the `kitsu` provider); the password flow exchanges the
credentials once at Kitsu's token endpoint and then builds the same SocialLogin and connects
it. Both end in allauth's signals, whose receivers call `record_link`, which stores the tokens
(`tokens.store_link`) and asks for the first sync.

The password lives only in this call's arguments: it is sent to Kitsu's token endpoint and
nowhere else (not the database, logs, session, messages or exceptions).
"""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from typing import Any

from allauth.socialaccount import signals
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount, SocialLogin, SocialToken
from allauth.socialaccount.providers.base import AuthProcess
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from kitsu_sync.kitsu_api import (
    KitsuConnectionError,
    KitsuError,
    KitsuInvalidClient,
    KitsuInvalidGrant,
    KitsuRateLimited,
    Resource,
    TokenResponse,
    password_grant,
)
from kitsu_sync.kitsu_client import get_kitsu_client, get_transport
from kitsu_sync.models import KITSU_PROVIDER_ID, AuthFlow, KitsuToken, SyncTrigger
from kitsu_sync.services import schedule
from kitsu_sync.services.kitsu_errors import describe_link_error
from kitsu_sync.services.tokens import DEFAULT_TOKEN_LIFETIME, store_link

logger = logging.getLogger(__name__)

# The user attributes kept in SocialAccount.extra_data; the rest of the profile is not needed.
PROFILE_ATTRIBUTES = ("slug", "name", "email", "avatar")

# Where the flow that produced a SocialLogin is remembered (allauth keeps `state` with it).
FLOW_STATE_KEY = "kitsu_auth_flow"
MAX_CREDENTIAL_BYTES = 1024

WRONG_LOGIN = (
    "Kitsu rejected the login: use your email or profile URL name (the last part of "
    "kitsu.app/users/…), not your display name, and check the password."
)
THROTTLED = (
    "Kitsu is limiting sign-in attempts from this server (15 a minute). "
    "Wait a minute, then try again."
)

# Kitsu lets one server (one IP address) make 15 password grants a minute, all its users
# together (docs/kitsu-api.md §6). So that no one person can spend that budget for everyone,
# nor guess someone's Kitsu password through this server: (scope, attempts, seconds).
LINK_LIMITS = (
    ("user", 3, 60),  # one Revenge user: 3 a minute, 10 an hour
    ("user", 10, 3600),
    ("login", 3, 60),  # one Kitsu login, whoever types it: the same
    ("login", 10, 3600),
    ("server", 12, 60),  # everyone: 12 of Kitsu's 15 a minute, the rest kept in reserve
)


def profile_data(user: Resource | None) -> dict[str, Any]:
    """Check the answer to `/users?filter[self]=true` and return the profile allauth keeps
    (raises allauth's OAuth2Error, which its views show).

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


class LinkFailed(Exception):
    """Linking did not happen; `message` tells the person what to do next."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def _text_problem(value: str, what: str) -> str | None:
    if not value:
        return f"Enter your Kitsu {what}."
    if len(value.encode("utf-8")) > MAX_CREDENTIAL_BYTES:
        return f"That {what} is longer than 1 KB, which Kitsu never issues: check what was pasted."
    if any(unicodedata.category(char) == "Cc" for char in value):
        return (
            f"That {what} contains control characters (such as a tab or line break), "
            "probably from copy and paste: type it again."
        )
    return None


def login_problem(login: str) -> str | None:
    """Why a Kitsu login cannot be sent as is, or None."""
    return _text_problem(login.strip(), "email or profile URL name")


def password_problem(password: str) -> str | None:
    """Why a password cannot be sent as is, or None (spaces are kept: they may be real)."""
    return _text_problem(password, "password")


@sensitive_variables("password", "token")
def link_with_password(
    *,
    user: AbstractBaseUser,
    login: str,
    password: str,
    request: HttpRequest | None = None,
) -> KitsuToken:
    """Exchange the credentials once at Kitsu's token endpoint, then connect the account."""
    problem = login_problem(login) or password_problem(password)
    if problem:
        raise LinkFailed(problem)
    _count_attempt(user_id=user.pk, login=login)
    try:
        token = password_grant(
            get_transport(),
            username=login.strip(),
            password=password,
            client_id=settings.KITSU_CLIENT_ID,
            client_secret=settings.KITSU_CLIENT_SECRET,
        )
    except KitsuInvalidGrant:
        raise LinkFailed(WRONG_LOGIN) from None
    except KitsuRateLimited:
        raise LinkFailed(THROTTLED, retryable=True) from None
    except KitsuInvalidClient:
        raise LinkFailed(
            "Kitsu does not know this site's OAuth client: the administrator should check "
            "KITSU_CLIENT_ID and KITSU_CLIENT_SECRET (kitsu.app needs neither)."
        ) from None
    except KitsuConnectionError:
        raise LinkFailed(
            "Kitsu could not be reached. Try again in a few minutes; if it keeps failing, "
            "the administrator should check KITSU_OAUTH_URL.",
            retryable=True,
        ) from None
    except KitsuError as exc:
        raise LinkFailed(describe_link_error(exc, "signing in"), retryable=exc.retryable) from None
    return connect_account(
        user=user,
        token=token,
        kitsu_user=_current_user(token),
        flow=AuthFlow.PASSWORD,
        request=request,
    )


def _count_attempt(*, user_id: int, login: str) -> None:
    """Count a sign-in attempt against LINK_LIMITS (in the cache: shared by every process when
    it is Redis); refuse it, without asking Kitsu, when a limit is reached."""
    now = int(time.time())
    idents = {
        "user": str(user_id),
        "login": hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32],
        "server": "all",
    }
    keys = []
    for scope, attempts, seconds in LINK_LIMITS:
        window = now // seconds
        key = f"kitsu-link-attempts:{scope}:{idents[scope]}:{seconds}:{window}"
        cache.add(key, 0, timeout=seconds + 5)
        keys.append((key, scope, attempts, seconds, (window + 1) * seconds - now))
    for key, scope, attempts, seconds, wait in keys:
        if (cache.get(key) or 0) >= attempts:
            raise LinkFailed(_too_many(scope, attempts, seconds, wait), retryable=True)
    for key, *_ in keys:
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=60)


def _too_many(scope: str, attempts: int, seconds: int, wait: int) -> str:
    period = "a minute" if seconds == 60 else "an hour"
    later = f"in {max(wait, 1)} seconds" if wait < 120 else f"in {wait // 60 + 1} minutes"
    if scope == "server":
        return (
            "Many people are linking Kitsu on this server right now, and Kitsu allows only a "
            f"few sign-ins a minute from it. Try again {later}."
        )
    who = "from your account" if scope == "user" else "for this Kitsu login"
    return f"At most {attempts} sign-in attempts {period} {who}. Try again {later}."


def _current_user(token: TokenResponse) -> Resource:
    try:
        user = get_kitsu_client().current_user(token=token.access_token)
    except KitsuError as exc:
        raise LinkFailed(
            describe_link_error(exc, "reading your Kitsu profile"), retryable=exc.retryable
        ) from None
    try:
        profile_data(user)
    except OAuth2Error as exc:
        raise LinkFailed(str(exc)) from None
    assert user is not None
    return user


def social_token(token: TokenResponse) -> SocialToken:
    return SocialToken(
        token=token.access_token,
        token_secret=token.refresh_token or "",
        expires_at=token.expires_at,
    )


def connect_account(
    *,
    user: AbstractBaseUser,
    token: TokenResponse,
    kitsu_user: Resource,
    flow: str,
    request: HttpRequest | None = None,
) -> KitsuToken:
    """allauth's connect path for tokens obtained outside its redirect flow.

    Looks up the SocialAccount as allauth's login flow does, refuses an account that belongs
    to another Revenge user, then connects; the signal receivers store the tokens.
    """
    provider = get_adapter().get_provider(request, KITSU_PROVIDER_ID)
    try:
        sociallogin = provider.sociallogin_from_response(request, profile_data(kitsu_user))
    except OAuth2Error as exc:
        raise LinkFailed(str(exc)) from None
    sociallogin.token = social_token(token)
    sociallogin.state = {"process": AuthProcess.CONNECT, FLOW_STATE_KEY: flow}
    owned_by_other = (
        SocialAccount.objects.filter(provider=provider.sub_id, uid=sociallogin.account.uid)
        .exclude(user=user)
        .exists()
    )
    if owned_by_other:
        raise LinkFailed(
            "This Kitsu account is already linked to another Revenge user. Unlink it there "
            "first, or sign in to Kitsu with a different account."
        )
    # One transaction: the account and its tokens are stored together or not at all.
    with transaction.atomic():
        # An existing account of this user sends social_account_updated from lookup().
        sociallogin.lookup()
        get_adapter().pre_social_login(request, sociallogin)
        signals.pre_social_login.send(sender=SocialLogin, request=request, sociallogin=sociallogin)
        if not sociallogin.is_existing:
            sociallogin.connect(request, user)
    return KitsuToken.objects.defer("access_token", "refresh_token").get(user=user)


def record_link(
    *, sociallogin: SocialLogin, user: AbstractBaseUser | None = None
) -> KitsuToken | None:
    """Store the tokens of a connected, signed-up or logged-in Kitsu account.

    Called by the allauth signal receivers. The SocialLogin's token is used, never the
    SocialToken table: allauth has not saved it yet on social_account_updated (and this
    project keeps tokens only in KitsuToken).
    """
    user = user or sociallogin.user
    social = sociallogin.token
    if user is None or user.pk is None or social is None or not social.token:
        logger.warning("A Kitsu login arrived without a user or token; nothing was stored")
        return None
    now = timezone.now()
    expires_at = social.expires_at or now + DEFAULT_TOKEN_LIFETIME
    token = TokenResponse(
        access_token=social.token,
        refresh_token=social.token_secret or None,
        token_type="Bearer",  # noqa: S106 (a token type, not a secret)
        expires_in=max(int((expires_at - now).total_seconds()), 0),
        scope="public",
        created_at=now,
    )
    extra: dict[str, Any] = dict(sociallogin.account.extra_data or {})
    extra.pop("id", None)
    kitsu_user = Resource(type="users", id=str(sociallogin.account.uid), attributes=extra)
    state = sociallogin.state or {}
    flow = state.get(FLOW_STATE_KEY, AuthFlow.AUTHORIZATION_CODE)
    previous = KitsuToken.objects.filter(user=user).values("kitsu_user_id", "needs_relink").first()
    link = store_link(user=user, token=token, kitsu_user=kitsu_user, flow=flow)
    newly_linked = (
        previous is None
        or previous["needs_relink"]
        or previous["kitsu_user_id"] != link.kitsu_user_id
        or state.get("process") == AuthProcess.CONNECT
    )
    if newly_linked:
        request_first_sync(user_id=user.pk)
    return link


def request_first_sync(*, user_id: int) -> bool:
    return schedule.request_sync(user_id=user_id, trigger=SyncTrigger.LINK)
