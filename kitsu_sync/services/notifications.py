"""Telling people what needs them: a link to re-link, syncs that keep failing, watched shows
that wait for a match.

Each condition opens a `Notice` when it starts (at most one open per user and kind: a unique
constraint, so concurrent workers cannot open two) and closes it when it ends; a notice is sent
once, through Apprise, to the user's own URL or else the operator's APPRISE_DEFAULT_URL, and
shown on the dashboard while it is open. Apprise (https://github.com/caronc/apprise) speaks to
a hundred-odd services behind one URL syntax, so Revenge keeps no client of its own for any.

Sending happens in a Celery task (`tasks.send_notice`), queued by the signal receivers: these
functions only say which notices started.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from datetime import datetime, timedelta
from typing import Any

import apprise
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from kitsu_sync import metrics
from kitsu_sync.encryption import TokenDecryptionError
from kitsu_sync.models import (
    KitsuToken,
    Notice,
    NoticeDelivery,
    NoticeKind,
    NotificationSettings,
    SyncOutcome,
    SyncRun,
    UnmatchedItem,
    UnmatchedStatus,
)

logger = logging.getLogger(__name__)

# A worker sending a notice holds it this long (Apprise's own timeouts are shorter).
SEND_CLAIM = timedelta(minutes=2)
# Attempts at sending one notice (the task's retries included) before it stays failed.
MAX_SEND_ATTEMPTS = 4
# A notice still pending this long after it started lost its task (the broker was down).
LOST_AFTER = timedelta(minutes=10)
# Titles named in an unmatched notice.
TITLES_NAMED = 3

FINISHED = [SyncOutcome.SUCCESS, SyncOutcome.PARTIAL, SyncOutcome.FAILED]


# --- conditions starting and ending -------------------------------------------------------------


def open_notice(*, user_id: int, kind: str, message: str) -> Notice | None:
    """Open a notice of this kind unless one is open already; the new notice, or None."""
    try:
        with transaction.atomic():
            return Notice.objects.create(
                user_id=user_id, kind=kind, message=message, started_at=timezone.now()
            )
    except IntegrityError:
        return None  # the condition had started already: it is notified once


def close_notices(*, user_id: int, kind: str) -> int:
    """The condition is over: close its open notice (a later start is notified again)."""
    return Notice.objects.filter(user_id=user_id, kind=kind, ended_at__isnull=True).update(
        ended_at=timezone.now()
    )


def link_needs_relink(*, user_id: int, reason: str) -> Notice | None:
    return open_notice(
        user_id=user_id,
        kind=NoticeKind.RELINK,
        message=f"Kitsu needs you to link your account again: syncing is paused. {reason}",
    )


def consecutive_failures(*, user_id: int, limit: int) -> int:
    """How many of the user's last `limit` finished syncs failed, counted from the newest."""
    outcomes = (
        SyncRun.objects.filter(user_id=user_id, dry_run=False, outcome__in=FINISHED)
        .order_by("-started_at", "-pk")
        .values_list("outcome", flat=True)[:limit]
    )
    count = 0
    for outcome in outcomes:
        if outcome != SyncOutcome.FAILED:
            break
        count += 1
    return count


def sync_finished(*, user_id: int, outcome: str) -> Notice | None:
    """After a sync: open the failing notice at the N-th failure in a row (N is
    KITSU_NOTIFY_FAILED_SYNCS), close it once a sync gets through."""
    if outcome in (SyncOutcome.SUCCESS, SyncOutcome.PARTIAL):
        close_notices(user_id=user_id, kind=NoticeKind.SYNC_FAILING)
        return None
    if outcome != SyncOutcome.FAILED:
        return None
    if Notice.objects.filter(
        user_id=user_id, kind=NoticeKind.RELINK, ended_at__isnull=True
    ).exists():
        return None  # the re-link notice says why, and what to do
    needed = settings.KITSU_NOTIFY_FAILED_SYNCS
    if consecutive_failures(user_id=user_id, limit=needed) < needed:
        return None
    last = (
        SyncRun.objects.filter(user_id=user_id, dry_run=False, outcome=SyncOutcome.FAILED)
        .order_by("-started_at", "-pk")
        .values_list("errors", flat=True)
        .first()
    )
    reason = (last or [{}])[-1].get("reason", "")
    return open_notice(
        user_id=user_id,
        kind=NoticeKind.SYNC_FAILING,
        message=f"Your last {needed} Kitsu syncs failed. The latest said: {reason}".strip(),
    )


def _aged_unmatched(now: datetime) -> Q:
    return Q(status=UnmatchedStatus.WAITING, first_seen__lte=now - _unmatched_after())


def _unmatched_after() -> timedelta:
    return settings.KITSU_NOTIFY_UNMATCHED_AFTER


def _unmatched_message(user_id: int, now: datetime) -> str:
    items = UnmatchedItem.objects.filter(_aged_unmatched(now), user_id=user_id).order_by(
        "first_seen"
    )
    titles = [item.title or item.external_id for item in items[:TITLES_NAMED]]
    more = items.count() - len(titles)
    named = ", ".join(titles) + (f" and {more} more" if more > 0 else "")
    hours = round(_unmatched_after().total_seconds() / 3600)
    return (
        f"Shows you watched have waited more than {hours} hours for a match to a Kitsu anime: "
        f"{named}. Match or ignore them on the dashboard, under Not matched yet."
    )


def check_unmatched(*, now: datetime | None = None) -> list[int]:
    """Open a notice for each user with a show waiting longer than KITSU_NOTIFY_UNMATCHED_AFTER,
    close those of users with none left. Returns the ids of the notices opened."""
    now = now or timezone.now()
    waiting = set(
        UnmatchedItem.objects.filter(_aged_unmatched(now)).values_list("user_id", flat=True)
    )
    Notice.objects.filter(kind=NoticeKind.UNMATCHED, ended_at__isnull=True).exclude(
        user_id__in=waiting
    ).update(ended_at=now)
    already = set(
        Notice.objects.filter(
            kind=NoticeKind.UNMATCHED, ended_at__isnull=True, user_id__in=waiting
        ).values_list("user_id", flat=True)
    )
    opened = []
    for user_id in sorted(waiting - already):
        notice = open_notice(
            user_id=user_id, kind=NoticeKind.UNMATCHED, message=_unmatched_message(user_id, now)
        )
        if notice is not None:
            opened.append(notice.pk)
    return opened


def lost_notices(*, now: datetime | None = None) -> list[int]:
    """Open notices still waiting to be sent long after they started (their task was lost)."""
    now = now or timezone.now()
    return list(
        Notice.objects.filter(
            ended_at__isnull=True,
            delivery=NoticeDelivery.PENDING,
            started_at__lte=now - LOST_AFTER,
            attempts__lt=MAX_SEND_ATTEMPTS,
        ).values_list("pk", flat=True)
    )


def open_notices(*, user_id: int) -> list[Notice]:
    """What the dashboard shows: the user's open notices, newest first."""
    return list(
        Notice.objects.filter(user_id=user_id, ended_at__isnull=True).order_by("-started_at")
    )


# --- where notices go -------------------------------------------------------------------------


def _host_is_local(host: str) -> bool:
    """True when `host` is, or resolves to, an address that is not on the public internet."""
    host = host.strip("[]").lower()
    if not host:
        return False
    # No shortcut for digits: "2130706433" and "017700000001" are 127.0.0.1 to the resolver
    # below. A service's numeric id (a Discord webhook's) is too long to be an address.
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False  # unresolvable now: nothing to reach
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in found]
    return any(not address.is_global for address in addresses)


def _asset() -> apprise.AppriseAsset:
    # No HTTP redirects: a public host that answers 307 to an address on this server's network
    # would take the notice past the address check.
    return apprise.AppriseAsset(http_redirects=False)


def _hosts(plugin: Any) -> list[str]:
    """Every host a plugin will connect to: `host`, and any other `*_host` (mail's smtp_host)."""
    return [
        value
        for name, value in vars(plugin).items()
        if (name == "host" or name.endswith("_host")) and isinstance(value, str) and value
    ]


def apprise_url_problem(url: str) -> str:
    """Why a user's Apprise URL cannot be used ("" when it can)."""
    sender = apprise.Apprise(asset=_asset())  # read as sending will read it
    if not sender.add(url.strip()):
        return (
            "Apprise does not recognise this URL: check it against Apprise's list of services "
            "(for example tgram://bottoken/ChatID or ntfys://ntfy.sh/topic)."
        )
    if len(sender) > 1:
        return "One Apprise URL only (a space or a comma starts another one)."
    plugin = sender[0]
    if getattr(plugin, "redirects", False):
        return "This URL asks Apprise to follow redirects (redirect=yes), which is not allowed."
    local = any(_host_is_local(host) for host in _hosts(plugin))
    if not settings.APPRISE_ALLOW_LOCAL_TARGETS and local:
        return (
            "This URL points at this server's own network (a local or private address), which "
            "this server does not allow for personal notifications. Use a public service, or "
            "ask the operator to set APPRISE_ALLOW_LOCAL_TARGETS=true."
        )
    return ""


def save_apprise_url(*, user_id: int, url: str) -> None:
    """Store the user's Apprise URL (encrypted); an empty one removes it. The stored one is
    never read, so a URL the current key cannot decrypt can still be replaced or removed."""
    url = url.strip()
    with transaction.atomic():
        if not NotificationSettings.objects.filter(user_id=user_id).update(apprise_url=url):
            NotificationSettings.objects.create(user_id=user_id, apprise_url=url)


def user_apprise_url(*, user_id: int) -> str:
    """The user's Apprise URL ("" when none, or when KITSU_TOKEN_KEY no longer decrypts it:
    the user enters it again, and meanwhile notices go to the operator's channel)."""
    try:
        row = NotificationSettings.objects.filter(user_id=user_id).first()
    except TokenDecryptionError:
        logger.warning("The Apprise URL of user %s cannot be decrypted", user_id)
        return ""
    return row.apprise_url if row is not None else ""


def _target(user_id: int) -> str:
    """The user's own URL while it is still allowed, else the operator's default."""
    own = user_apprise_url(user_id=user_id)
    if own and not apprise_url_problem(own):
        return own
    return settings.APPRISE_DEFAULT_URL


# --- sending ------------------------------------------------------------------------------------


def _claim(notice_id: int, now: datetime) -> bool:
    return bool(
        Notice.objects.filter(
            Q(sending_until__isnull=True) | Q(sending_until__lte=now),
            pk=notice_id,
            ended_at__isnull=True,
            delivery__in=[NoticeDelivery.PENDING, NoticeDelivery.FAILED],
            attempts__lt=MAX_SEND_ATTEMPTS,
            # Counted when claimed: a send cut off (time limit, a worker gone) still counts,
            # so a notice is never sent again and again by beat.
        ).update(sending_until=now + SEND_CLAIM, attempts=F("attempts") + 1)
    )


def _body(notice: Notice) -> str:
    username = (
        get_user_model()
        .objects.filter(pk=notice.user_id)
        .values_list(get_user_model().USERNAME_FIELD, flat=True)
        .first()
    )
    return f"{notice.message}\n\n(Revenge user {username})"


def send_notice(*, notice_id: int) -> str:
    """Send an open notice through Apprise, once; returns its delivery afterwards
    (`failed` may be tried again: the task retries while attempts remain)."""
    now = timezone.now()
    if not _claim(notice_id, now):
        return Notice.objects.filter(pk=notice_id).values_list("delivery", flat=True).first() or ""
    notice = Notice.objects.get(pk=notice_id)
    if notice.kind == NoticeKind.RELINK and not _still_needs_relink(notice.user_id):
        # A refresh that raced with the one that raised the flag worked and cleared it: the
        # condition is over before anyone was told, so no one is.
        close_notices(user_id=notice.user_id, kind=NoticeKind.RELINK)
        Notice.objects.filter(pk=notice_id).update(sending_until=None, attempts=F("attempts") - 1)
        return "ended"
    target = _target(notice.user_id)
    if not target:
        delivery, error = NoticeDelivery.DASHBOARD, ""
    else:
        delivery, error = _deliver(target, notice)
        metrics.NOTIFICATIONS.labels(notice.kind, delivery).inc()
    Notice.objects.filter(pk=notice_id).update(
        delivery=delivery,
        # A notice for the dashboard only was not an attempt to send it anywhere.
        attempts=F("attempts") - int(delivery == NoticeDelivery.DASHBOARD),
        sent_at=timezone.now() if delivery == NoticeDelivery.SENT else None,
        last_error=error,
        sending_until=None,
    )
    return delivery


def _still_needs_relink(user_id: int) -> bool:
    return KitsuToken.objects.filter(user_id=user_id, needs_relink=True).exists()


def _deliver(target: str, notice: Notice) -> tuple[str, str]:
    sender = apprise.Apprise(asset=_asset())
    if not sender.add(target):
        # Never the URL itself in the record: it holds the channel's secrets.
        return NoticeDelivery.FAILED, "The Apprise URL is not one Apprise recognises."
    if sender.notify(title=f"Revenge: {notice.get_kind_display()}", body=_body(notice)):
        return NoticeDelivery.SENT, ""
    logger.warning("Apprise could not deliver notice %s of user %s", notice.pk, notice.user_id)
    return NoticeDelivery.FAILED, "The notification service did not accept the message."


def may_retry(*, notice_id: int) -> bool:
    return Notice.objects.filter(
        pk=notice_id,
        ended_at__isnull=True,
        delivery=NoticeDelivery.FAILED,
        attempts__lt=MAX_SEND_ATTEMPTS,
    ).exists()
