"""Who may have an account, and how people sign in.

- Sign-up is open only with ACCOUNT_ALLOW_SIGNUP, or for a browser session that opened an
  invitation link (`make_invite`): a signed, expiring token that creates one account.
- allauth's adapters apply that rule to its sign-up form and to sign-ups through Kitsu.
- The admin's sign-in page sends people to allauth's, so that every password sign-in passes
  allauth's rate limits (ACCOUNT_RATE_LIMITS in settings).

docs/accounts.md says how to use them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.utils import filter_users_by_email, filter_users_by_username
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import REDIRECT_FIELD_NAME, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timezone import now
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from kitsu_sync.models import SpentInvite

# --- invitations ------------------------------------------------------------------------------

# Separates invitation tokens from every other value this site signs with SECRET_KEY.
INVITE_SALT = "revenge_site.accounts.invite"
INVITE_SESSION_KEY = "revenge_invite"
INVITE_MAX_DAYS = 90


@dataclass(frozen=True)
class Invite:
    """What an invitation token holds: a random id, when it stops working, and for whom."""

    nonce: str
    expires_at: datetime
    email: str = ""


class InviteRefused(Exception):
    """Why an invitation link cannot open sign-up, in words for the person who holds it."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def make_invite(*, valid_for: timedelta, email: str = "") -> str:
    """A token that opens sign-up for one account until `valid_for` from now."""
    payload = {
        "n": secrets.token_urlsafe(12),
        "x": int((now() + valid_for).timestamp()),
        "e": email,
    }
    return signing.dumps(payload, salt=INVITE_SALT, compress=True)


def invite_path(token: str) -> str:
    return reverse("account_invite", kwargs={"token": token})


def _spent_message(nonce: str) -> str:
    # Kept in the admin's history of the new account (SpentInvite is what makes it single-use).
    return f"Signed up with invitation {nonce}"


def read_invite(token: str) -> Invite:
    """The invite in `token`, or InviteRefused if it was altered, has expired or was used."""
    try:
        payload = signing.loads(token, salt=INVITE_SALT)
    except signing.BadSignature:
        raise InviteRefused(
            "This invitation link is not valid: it was changed or cut short on the way. "
            "Copy the whole link again, or ask whoever invited you for a new one.",
            status=400,
        ) from None
    invite = Invite(
        nonce=str(payload["n"]),
        expires_at=datetime.fromtimestamp(int(payload["x"]), tz=UTC),
        email=str(payload.get("e") or ""),
    )
    if now() >= invite.expires_at:
        raise InviteRefused(
            f"This invitation expired on {invite.expires_at:%Y-%m-%d %H:%M} UTC. "
            "Ask whoever invited you for a new link.",
            status=410,
        )
    if SpentInvite.objects.filter(nonce=invite.nonce).exists():
        raise InviteRefused(
            "This invitation was used already: each one creates a single account. If that "
            "account is yours, sign in; otherwise ask whoever invited you for a new link.",
            status=410,
        )
    return invite


def session_invite(request: HttpRequest) -> Invite | None:
    """The invite this browser session opened, while it is still good."""
    session = getattr(request, "session", None)
    token = session.get(INVITE_SESSION_KEY) if session is not None else None
    if not token:
        return None
    try:
        return read_invite(token)
    except InviteRefused:
        return None


def claim_invite(request: HttpRequest) -> Invite | None:
    """Mark the session's invite spent, before the account it opens is saved (in the same
    transaction): of two sign-ups racing with one link, the second is refused here. None when
    sign-up is open without an invite."""
    invite = session_invite(request)
    if invite is None:
        if settings.ACCOUNT_ALLOW_SIGNUP:
            return None
        raise PermissionDenied("Sign-up is closed, and this session's invitation is not valid.")
    try:
        with transaction.atomic():
            SpentInvite.objects.create(nonce=invite.nonce)
    except IntegrityError:
        raise PermissionDenied(
            "This invitation was used already: each one creates a single account."
        ) from None
    return invite


def spend_invite(request: HttpRequest, user: AbstractBaseUser, invite: Invite | None) -> None:
    """Record which account the claimed invite created (the admin's history shows it too)."""
    request.session.pop(INVITE_SESSION_KEY, None)
    if invite is None:
        return
    SpentInvite.objects.filter(nonce=invite.nonce).update(user=user)
    message = _spent_message(invite.nonce) + (f" for {invite.email}" if invite.email else "")
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=get_user_model().objects.filter(pk=user.pk),
        action_flag=ADDITION,
        change_message=message,
        single_object=True,
    )


@require_GET
@never_cache
def accept_invite(request: HttpRequest, token: str) -> HttpResponse:
    """Open sign-up for this browser session, then show the sign-up form."""
    try:
        invite = read_invite(token)
    except InviteRefused as refused:
        context = {"reason": refused.message}
        return render(request, "account/invite_refused.html", context, status=refused.status)
    if request.user.is_authenticated:
        reason = (
            f"You are signed in as {request.user.get_username()}. Sign out first, then open "
            "the invitation link again to create a new account."
        )
        return render(request, "account/invite_refused.html", {"reason": reason}, status=409)
    request.session[INVITE_SESSION_KEY] = token
    query = f"?{urlencode({'email': invite.email})}" if invite.email else ""
    return HttpResponseRedirect(reverse("account_signup") + query)


def signup_is_open(request: HttpRequest) -> bool:
    return bool(settings.ACCOUNT_ALLOW_SIGNUP) or session_invite(request) is not None


def signup_state(request: HttpRequest) -> dict[str, Any]:
    """Template context: `signup_open`, worked out only where a template asks for it."""
    return {"signup_open": cache(lambda: get_account_adapter(request).is_open_for_signup(request))}


# --- allauth's adapters -----------------------------------------------------------------------


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_is_open(request)

    def save_user(
        self, request: HttpRequest, user: AbstractBaseUser, form: BaseForm, commit: bool = True
    ) -> AbstractBaseUser:
        if not commit:
            return super().save_user(request, user, form, commit=commit)
        with transaction.atomic():
            invite = claim_invite(request)
            user = super().save_user(request, user, form, commit=commit)
            spend_invite(request, user, invite)
        return user

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth counts failed sign-ins per site host and per login as typed, so an account's
        # username and e-mail address (and each allowed host name) had a budget each. One
        # budget per account instead; a login that names no single account keeps its own.
        login = str(credentials.get("email") or credentials.get("username") or "")
        candidates = []
        if credentials.get("email"):
            candidates = filter_users_by_email(credentials["email"])
        if not candidates and credentials.get("username"):
            candidates = list(filter_users_by_username(credentials["username"])[:2])
        if len(candidates) == 1:
            return f"account:{candidates[0].pk}"
        return f"login:{login.lower()}"


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    # is_open_for_signup is allauth's: it asks AccountAdapter above, so a Kitsu sign-in of
    # someone without an account creates none while sign-up is closed. Linking Kitsu while
    # signed in is a connection, not a sign-up, and stays open.

    def save_user(
        self, request: HttpRequest, sociallogin: SocialLogin, form: BaseForm | None = None
    ) -> AbstractBaseUser:
        with transaction.atomic():
            invite = claim_invite(request)
            user = super().save_user(request, sociallogin, form)
            spend_invite(request, user, invite)
        return user


# --- the admin --------------------------------------------------------------------------------


class RevengeAdminSite(admin.AdminSite):
    """Django's admin, whose sign-in page is the site's own (allauth's).

    The admin's own form checked passwords with no limit at all; allauth's counts failed
    attempts per account and per address in the shared cache. One way in, one set of limits.
    """

    def password_change(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        # The admin's form checks the old password with no limit; allauth's page counts tries.
        return HttpResponseRedirect(reverse("account_change_password"))

    @method_decorator(never_cache)
    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse("admin:index", current_app=self.name)
        if not request.user.is_authenticated:
            sign_in = reverse("account_login")
            return HttpResponseRedirect(f"{sign_in}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")
        if self.has_permission(request):
            return HttpResponseRedirect(next_url)
        # Signed in, but not staff: sending them to the sign-in page would loop back here.
        context = {**self.each_context(request), "username": request.user.get_username()}
        return render(request, "account/admin_not_staff.html", context, status=403)
