"""Kitsu tokens: store a link, hand out a valid access token, refresh it once at a time.

Kitsu access tokens live 30 days and refresh tokens are single-use (Doorkeeper revokes the old
pair on refresh), so two workers refreshing the same user at once would log that user out. One
process at a time claims the refresh with a compare-and-swap on
`KitsuToken.refresh_claimed_until`; the others poll the row until the new token is there. No
database transaction stays open during the HTTP call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from kitsu_sync import metrics
from kitsu_sync.db import Claim
from kitsu_sync.encryption import TokenDecryptionError
from kitsu_sync.kitsu_api import (
    BearerToken,
    KitsuClient,
    KitsuError,
    KitsuInvalidGrant,
    Resource,
    TokenResponse,
    refresh_grant,
    revoke_token,
)
from kitsu_sync.kitsu_client import get_courtesy_transport, get_kitsu_client, get_transport
from kitsu_sync.mapping import kitsu_user_fields
from kitsu_sync.models import (
    KITSU_PROVIDER_ID,
    AuthFlow,
    KitsuOutbox,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    NoticeKind,
)
from kitsu_sync.services import notifications
from kitsu_sync.signals import link_needs_relink

logger = logging.getLogger(__name__)

# Refresh this long before expiry: a 30-day token is renewed on the first use in its last 3 days.
REFRESH_MARGIN = timedelta(days=3)
# Doorkeeper's access_token_expires_in on kitsu.app, for a token response without expires_in.
DEFAULT_TOKEN_LIFETIME = timedelta(days=30)
POLL_INTERVAL = 0.05
# A waiting worker polls the claim ever less often, up to this: a refresh may take minutes.
POLL_INTERVAL_MAX = 1.0
CLAIM_MARGIN = timedelta(seconds=30)

RELINK_REFRESH_REJECTED = (
    "Kitsu no longer accepts this link (it rejected the refresh token: the password may have "
    "changed or access was revoked). Link Kitsu again to resume syncing."
)
RELINK_NOT_RENEWABLE = (
    "The Kitsu access token expired and Kitsu gave no refresh token to renew it. "
    "Link Kitsu again to resume syncing."
)
RELINK_UNREADABLE = (
    "The stored Kitsu tokens cannot be decrypted with KITSU_TOKEN_KEY (the key was changed "
    "without keeping the old one). Link Kitsu again to resume syncing."
)


class KitsuLinkError(Exception):
    """The user's Kitsu link cannot give an access token; `message` says what to do."""

    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotLinked(KitsuLinkError):
    """The user has not linked a Kitsu account."""


class NeedsRelink(KitsuLinkError):
    """Kitsu rejected the link; syncing stops until the user links again."""


class RefreshInProgress(KitsuLinkError):
    """Another worker held the refresh claim past every deadline; try again later."""

    retryable = True


def claim_duration() -> timedelta:
    """How long a refresh claim lasts: longer than one refresh can take, so that it never
    lapses while its holder may still spend the refresh token (single use) at Kitsu."""
    # claim = the transport's longest request + CLAIM_MARGIN, where the longest request is
    # attempts x (rate limiter's longest wait + KITSU_HTTP_DEADLINE) + (attempts - 1) x the
    # longest wait between attempts (Transport.longest_request): every attempt queues at the
    # limiter again. The margin covers the database writes around it and hosts' clock skew.
    return timedelta(seconds=get_transport().longest_request) + CLAIM_MARGIN


@dataclass(frozen=True)
class KitsuAccess:
    """Everything a request on a user's behalf needs: the client, their Kitsu user id, and
    their access token, which the client refreshes once when Kitsu refuses it."""

    client: KitsuClient
    kitsu_user_id: str
    token: BearerToken


def kitsu_access(*, user_id: int) -> KitsuAccess:
    """Kitsu access for this user, with a token valid now (refreshed first when due).

    Raises NotLinked or NeedsRelink, or the KitsuError of a refresh that failed.
    """
    link = _load_link(user_id)
    token = BearerToken(
        _valid_token(link),
        refresh=lambda rejected: refresh_access_token(user_id=user_id, rejected_token=rejected),
    )
    return KitsuAccess(client=get_kitsu_client(), kitsu_user_id=link.kitsu_user_id, token=token)


def _load_link(user_id: int) -> KitsuToken:
    try:
        link = KitsuToken.objects.get(user_id=user_id)
    except KitsuToken.DoesNotExist:
        raise NotLinked(
            "No Kitsu account is linked: use Link Kitsu on the dashboard first."
        ) from None
    except TokenDecryptionError:
        mark_needs_relink(user_id=user_id, reason=RELINK_UNREADABLE)
        raise NeedsRelink(RELINK_UNREADABLE) from None
    if link.needs_relink:
        raise NeedsRelink(link.relink_reason or RELINK_REFRESH_REJECTED)
    return link


def _due(link: KitsuToken, now: datetime) -> bool:
    return link.token_expires_at - now <= REFRESH_MARGIN


def get_access_token(*, user_id: int) -> str:
    """A valid access token, refreshed first when it expires within REFRESH_MARGIN.

    Raises NotLinked or NeedsRelink. When the early refresh fails for a passing reason (Kitsu
    down), the current token is returned while it still works; once it has expired, the
    KitsuError is raised (its `retryable` says whether a later attempt may help).
    """
    return _valid_token(_load_link(user_id))


def _valid_token(link: KitsuToken) -> str:
    if not _due(link, timezone.now()):
        return link.access_token
    return _refresh(link.user_id, seen_token=link.access_token, forced=False)


def refresh_access_token(*, user_id: int, rejected_token: str | None = None) -> str:
    """Refresh now, typically once after Kitsu answered 401 to `rejected_token`.

    When another process already replaced `rejected_token`, its successor is returned without
    a request. Raises NotLinked, NeedsRelink, or the KitsuError of a failed refresh.
    """
    link = _load_link(user_id)
    if rejected_token is not None and link.access_token != rejected_token:
        return link.access_token
    return _refresh(user_id, seen_token=link.access_token, forced=True)


def _refresh(
    user_id: int,
    *,
    seen_token: str,
    forced: bool,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> str:
    hold = claim_duration()
    deadline = monotonic() + hold.total_seconds() + 10
    interval = POLL_INTERVAL
    while True:
        link = _load_link(user_id)
        if link.access_token != seen_token:
            return link.access_token  # another process refreshed while we waited
        if not forced and not _due(link, timezone.now()):
            return link.access_token
        claim = Claim.take(KitsuToken.objects.filter(pk=link.pk), "refresh_claimed_until", ttl=hold)
        if claim is not None:
            break
        if monotonic() > deadline:
            raise RefreshInProgress(
                "Another worker has been refreshing this Kitsu token for too long; "
                "try again in a minute."
            )
        sleep(interval)
        interval = min(interval * 2, POLL_INTERVAL_MAX)

    # Read again under our claim: a refresh may have finished between the read and the claim.
    try:
        link = _load_link(user_id)
    except KitsuLinkError:
        claim.release()
        raise
    if link.access_token != seen_token or (not forced and not _due(link, timezone.now())):
        claim.release()
        return link.access_token
    return _refresh_claimed(link, claim, forced=forced)


@sensitive_variables("token", "refresh_token")
def _refresh_claimed(link: KitsuToken, claim: Claim, *, forced: bool) -> str:
    claimed_at = claim.until - claim.ttl if claim.until is not None else timezone.now()
    if not link.refresh_token:
        if not forced and link.token_expires_at > timezone.now():
            claim.release()
            return link.access_token
        mark_needs_relink(user_id=link.user_id, reason=RELINK_NOT_RENEWABLE)
        raise NeedsRelink(RELINK_NOT_RENEWABLE)
    try:
        token = refresh_grant(
            get_transport(),
            refresh_token=link.refresh_token,
            client_id=settings.KITSU_CLIENT_ID,
            client_secret=settings.KITSU_CLIENT_SECRET,
        )
    except KitsuInvalidGrant:
        successor = _refresh_rejected(link)
        if successor is not None:
            # Our claim ran out and another worker refreshed with the same token first.
            return successor
        metrics.TOKEN_REFRESHES.labels("rejected").inc()
        logger.warning("Kitsu rejected the refresh token of user %s: needs re-link", link.user_id)
        raise NeedsRelink(RELINK_REFRESH_REJECTED) from None
    except KitsuError as exc:
        claim.release()
        metrics.TOKEN_REFRESHES.labels("failed").inc()
        if not forced and link.token_expires_at > timezone.now():
            logger.warning(
                "Early refresh of the Kitsu token of user %s failed (%s); the current token "
                "still works until %s",
                link.user_id,
                exc.message,
                link.token_expires_at.isoformat(),
            )
            return link.access_token
        raise
    _store_refreshed(link, token, claimed_at)
    metrics.TOKEN_REFRESHES.labels("refreshed").inc()
    logger.info("Refreshed the Kitsu token of user %s", link.user_id)
    return token.access_token


def _refresh_rejected(link: KitsuToken) -> str | None:
    """Kitsu refused the refresh token `link` holds: the access token of the pair another
    worker already got for it, or None after marking the link for re-link. One locked read and
    write, so that a refresh saving its pair meanwhile is seen rather than flagged over."""
    with transaction.atomic():
        current = KitsuToken.objects.select_for_update().filter(pk=link.pk).first()
        if current is not None and current.refresh_token != link.refresh_token:
            return current.access_token
        mark_needs_relink(user_id=link.user_id, reason=RELINK_REFRESH_REJECTED)
    return None


@sensitive_variables("token", "fields")
def _store_refreshed(link: KitsuToken, token: TokenResponse, claimed_at: datetime) -> None:
    """Save the new pair, whether or not our claim is still current: Kitsu has revoked the old
    one, so the tokens in hand are the only ones that work. A re-link flag raised by a refresh
    that lost a race with this one is cleared with it: this refresh proves the link works."""
    fields: dict[str, Any] = {
        "access_token": token.access_token,
        "refresh_token": token.refresh_token or link.refresh_token,
        "token_expires_at": _expires_at(token),
        "refresh_claimed_until": None,
        "updated_at": timezone.now(),
    }
    with transaction.atomic():
        if _flagged_by_a_lost_race(link, claimed_at):
            fields.update(needs_relink=False, relink_reason="")
            logger.warning(
                "A refresh of the Kitsu token of user %s that raced with this one marked the "
                "link for re-link; this refresh worked, so the link stays in use",
                link.user_id,
            )
        # Only onto the account refreshed: a person who linked another Kitsu account while
        # this refresh was under way keeps that account's tokens.
        if not KitsuToken.objects.filter(pk=link.pk, kitsu_user_id=link.kitsu_user_id).update(
            **fields
        ):
            logger.warning(
                "User %s linked another Kitsu account while the old one's token was refreshed; "
                "the old account's new tokens are dropped",
                link.user_id,
            )
            return
        if not fields.get("needs_relink", True):
            # The re-link notice the lost race opened is over too (a later, real one is told).
            notifications.close_notices(user_id=link.user_id, kind=NoticeKind.RELINK)


def _flagged_by_a_lost_race(link: KitsuToken, claimed_at: datetime) -> bool:
    """Whether the link's re-link flag can only come from a refresh that raced with ours and
    lost: raised after our claim began (a flag raised before it stops a refresh from starting),
    because Kitsu refused a refresh token, while the link still held the one this refresh spent.
    Kitsu refuses a refresh token once it is used, and ours used that one successfully."""
    try:
        current = KitsuToken.objects.select_for_update().filter(pk=link.pk).first()
    except TokenDecryptionError:
        return False  # the key changed: that flag is not one a refresh raised
    return (
        current is not None
        and current.needs_relink
        and current.relink_reason == RELINK_REFRESH_REJECTED
        and current.refresh_token == link.refresh_token
        and current.updated_at >= claimed_at
    )


def mark_needs_relink(*, user_id: int, reason: str) -> None:
    """Stop using a link until the user links again; `reason` is shown to them."""
    KitsuToken.objects.filter(user_id=user_id).update(
        needs_relink=True,
        relink_reason=reason[:500],
        refresh_claimed_until=None,
        updated_at=timezone.now(),
    )
    # Robust: a failing listener (notices) must not hide the re-link from the caller.
    link_needs_relink.send_robust(sender=KitsuToken, user_id=user_id, reason=reason)


def _expires_at(token: TokenResponse) -> datetime:
    return token.expires_at or timezone.now() + DEFAULT_TOKEN_LIFETIME


@sensitive_variables("token", "fields")
def store_link(
    *, user: AbstractBaseUser, token: TokenResponse, kitsu_user: Resource, flow: str
) -> KitsuToken:
    """Create or replace the user's link with fresh tokens (both flows end here)."""
    if flow not in AuthFlow.values:
        raise ValueError(f"Unknown auth flow {flow!r}; use one of {', '.join(AuthFlow.values)}.")
    fields: dict[str, Any] = {
        **kitsu_user_fields(kitsu_user),
        "access_token": token.access_token,
        "token_expires_at": _expires_at(token),
        "auth_flow": flow,
        "needs_relink": False,
        "relink_reason": "",
        "refresh_claimed_until": None,
    }
    with transaction.atomic():
        previous = (
            KitsuToken.objects.filter(user=user)
            .values_list("kitsu_user_id", flat=True)
            .select_for_update()
            .first()
        )
        same_account = previous is not None and previous == fields["kitsu_user_id"]
        if previous is not None and not same_account:
            # Another Kitsu account: its incremental cursor means nothing for this one.
            KitsuSyncState.objects.filter(user=user).update(
                cursor_updated_at=None, last_full_sync_at=None
            )
        if token.refresh_token or not same_account:
            fields["refresh_token"] = token.refresh_token or ""
        # else: a new login of the same account without a refresh token keeps the one stored.
        link, _created = KitsuToken.objects.update_or_create(user=user, defaults=fields)
    logger.info(
        "Stored the Kitsu link of user %s to Kitsu user %s (%s)", user.pk, link.kitsu_user_id, flow
    )
    return link


def unlink(*, user: AbstractBaseUser, delete_library: bool) -> bool:
    """Forget the user's Kitsu tokens and allauth account; keep or delete their imported list.

    Then ask Kitsu to revoke the tokens, so that a copy of them (a backup of the database, say)
    is worthless too. Returns whether Kitsu confirmed; the unlink itself never depends on it.
    """
    revocable = _revocable_token(user)
    with transaction.atomic():
        KitsuToken.objects.filter(user=user).delete()
        SocialAccount.objects.filter(user=user, provider=KITSU_PROVIDER_ID).delete()
        # Changes waiting for that Kitsu account are not for the next one linked: a kept
        # list's changes still show as Revenge's (local_updated_at), for the merge to weigh.
        KitsuOutbox.objects.filter(user=user).delete()
        state_reset: dict[str, Any] = {
            "cursor_updated_at": None,
            "last_full_sync_at": None,
            "next_sync_at": None,
        }
        if delete_library:
            LibraryEntry.objects.filter(user=user).delete()
            state_reset["entries_synced"] = 0
        KitsuSyncState.objects.filter(user=user).update(**state_reset)
    logger.info(
        "Unlinked Kitsu from user %s (library %s)", user.pk, "deleted" if delete_library else "kept"
    )
    return revocable is not None and _revoke_at_kitsu(user, revocable)


def _revocable_token(user: AbstractBaseUser) -> str | None:
    """The token to revoke: the refresh token (Doorkeeper revokes its access token with it),
    else the access token; None when there is no link or the key to read it is gone."""
    link = KitsuToken.objects.filter(user=user).first()
    if link is None:
        return None
    try:
        return link.refresh_token or link.access_token or None
    except TokenDecryptionError:
        return None


def _revoke_at_kitsu(user: AbstractBaseUser, token: str) -> bool:
    try:
        revoke_token(
            get_courtesy_transport(),
            token=token,
            client_id=settings.KITSU_CLIENT_ID,
            client_secret=settings.KITSU_CLIENT_SECRET,
        )
    except KitsuError as exc:
        # Kitsu's error never echoes the token; the message says what went wrong.
        logger.warning("Kitsu did not revoke the tokens of unlinked user %s: %s", user.pk, exc)
        return False
    return True
