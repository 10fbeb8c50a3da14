"""Changes bound for Kitsu, kept in the database until Kitsu has them (`KitsuOutbox`).

A change made in Revenge (a watched episode, an edit, a removal) writes its outbox row in the
same transaction as the change, so a change taken while Kitsu, Redis or the worker is down is
kept and sent later. After the commit, `outbox_ready` asks for a delivery at once (Kitsu hears
of it within seconds); beat's `drain_outbox` catches anything that request missed. Delivery
holds the user's sync claim, so one process at a time writes a user's entries (a sync running
meanwhile sends the same changes itself), and a row leaves the outbox in the transaction that
stores Kitsu's answer: each change is written to Kitsu once.
"""

from __future__ import annotations

import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kitsu_sync.db import Claim
from kitsu_sync.kitsu_api import KitsuError, KitsuNotFound
from kitsu_sync.merge import SyncDirection
from kitsu_sync.models import (
    KitsuOutbox,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    OutboxAction,
)
from kitsu_sync.plan import plan_local_push
from kitsu_sync.services import library, push, tokens
from kitsu_sync.services.kitsu_errors import describe_sync_error
from kitsu_sync.signals import outbox_ready

logger = logging.getLogger(__name__)

# The user's sync claim, held while their changes are delivered.
CLAIM_TTL = timedelta(minutes=5)
RETRY_BASE = timedelta(seconds=30)
# Rounds one delivery makes for changes that arrive while it sends.
ROUNDS = 5
RETRY_MAX = timedelta(hours=1)


class OutboxBusy(Exception):
    """A sync (or another delivery) of this user's library holds the claim; it sends the
    same changes, or the next delivery will."""

    retryable = True


def sends_to_kitsu(user_id: int) -> bool:
    """Changes of this user go to Kitsu: the direction sends them, and a Kitsu account is
    linked (one that needs linking again still gets them, once it is linked)."""
    return (
        settings.KITSU_SYNC_DIRECTION != SyncDirection.IMPORT_ONLY
        and KitsuToken.objects.filter(user_id=user_id).exists()
    )


def _queue(user_id: int, anime_id: int, **fields: object) -> None:
    now = timezone.now()
    row = KitsuOutbox(
        user_id=user_id,
        anime_id=anime_id,
        queued_at=now,
        next_attempt_at=now,
        attempts=0,
        failed=False,
        last_error="",
        **fields,
    )
    KitsuOutbox.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["user", "anime"],
        update_fields=[
            "entry",
            "action",
            "kitsu_entry_id",
            "queued_at",
            "next_attempt_at",
            "attempts",
            "failed",
            "last_error",
        ],
    )
    transaction.on_commit(lambda: outbox_ready.send(sender=KitsuOutbox, user_id=user_id))


def queue_write(entry: LibraryEntry) -> None:
    """Queue the entry for Kitsu (call in the transaction that changed it)."""
    _queue(
        entry.user_id, entry.anime_id, entry=entry, action=OutboxAction.WRITE, kitsu_entry_id=None
    )


def queue_delete(*, user_id: int, anime_id: int, kitsu_entry_id: int) -> None:
    """Queue the removal of a Kitsu entry whose Revenge entry is gone (in that transaction)."""
    _queue(user_id, anime_id, entry=None, action=OutboxAction.DELETE, kitsu_entry_id=kitsu_entry_id)


def retry_failed(*, user_id: int, anime_id: int) -> bool:
    """Send a change Kitsu refused once more (after the user fixed what it said)."""
    now = timezone.now()
    retried = KitsuOutbox.objects.filter(user_id=user_id, anime_id=anime_id, failed=True).update(
        failed=False, attempts=0, next_attempt_at=now, last_error=""
    )
    if retried:
        transaction.on_commit(lambda: outbox_ready.send(sender=KitsuOutbox, user_id=user_id))
    return bool(retried)


# --- delivery ---------------------------------------------------------------------------------


@dataclass
class Delivery:
    sent: int = 0
    deleted: int = 0
    refused: int = 0
    waiting: int = 0  # left for a later attempt (Kitsu down, the link to renew)


def _backoff(attempts: int) -> timedelta:
    delay = min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)
    return delay / 2 + delay * random.random() / 2  # noqa: S311 - jitter, not a secret


def _postpone(rows: list[KitsuOutbox], reason: str) -> None:
    now = timezone.now()
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + _backoff(row.attempts)
        row.last_error = reason[:2000]
    KitsuOutbox.objects.bulk_update(rows, ["attempts", "next_attempt_at", "last_error"])


def _due(user_id: int, now: datetime) -> list[KitsuOutbox]:
    return list(
        KitsuOutbox.objects.filter(user_id=user_id, failed=False, next_attempt_at__lte=now)
        .select_related("anime")
        .order_by("queued_at")
    )


def _send_deletes(access: tokens.KitsuAccess, rows: list[KitsuOutbox], delivery: Delivery) -> None:
    for row in rows:
        with contextlib.suppress(KitsuNotFound):  # gone already: what the removal wanted
            access.client.delete_library_entry(token=access.token, entry_id=row.kitsu_entry_id)
        row.delete()
        delivery.deleted += 1


def _send_writes(
    access: tokens.KitsuAccess, rows: list[KitsuOutbox], delivery: Delivery, *, user_id: int
) -> None:
    direction = settings.KITSU_SYNC_DIRECTION
    by_entry = {row.entry_id: row for row in rows}
    entries = library.entries_with_local_changes(user_id=user_id, only_pks=by_entry)
    pushes = [p for p in (plan_local_push(e, direction=direction) for e in entries) if p]
    outcome = push.send_pushes(access, pushes, direction=direction)
    delivery.sent += outcome.pushed
    refused = {error["anime"]: error["reason"] for error in outcome.errors if error["anime"]}
    if refused:
        KitsuOutbox.objects.filter(
            user_id=user_id, anime__kitsu_id__in=list(refused), action=OutboxAction.WRITE
        ).update(failed=True, last_error="; ".join(refused.values())[:2000])
        delivery.refused += len(refused)
    if outcome.stopped_by is not None:
        raise outcome.stopped_by
    # Entries already as Kitsu has them (the sync sent them meanwhile): nothing to send.
    pushed = {p.entry_pk for p in pushes}
    KitsuOutbox.objects.filter(
        entry_id__in=[pk for pk in by_entry if pk not in pushed], action=OutboxAction.WRITE
    ).delete()


def deliver(*, user_id: int) -> Delivery:
    """Send this user's due changes to Kitsu now. Raises OutboxBusy while a sync holds the
    user's claim; a failure a later attempt may fix postpones the rows (with backoff)."""
    delivery = Delivery()
    rows = _due(user_id, timezone.now())
    if not rows:
        return delivery
    KitsuSyncState.objects.get_or_create(user_id=user_id)
    claim = Claim.take(
        KitsuSyncState.objects.filter(user_id=user_id), "sync_claimed_until", ttl=CLAIM_TTL
    )
    if claim is None:
        raise OutboxBusy(f"A sync of user {user_id}'s library is running; it sends these too.")
    try:
        access = tokens.kitsu_access(user_id=user_id)
        for _ in range(ROUNDS):
            _send_deletes(access, [r for r in rows if r.action == OutboxAction.DELETE], delivery)
            writes = [r for r in rows if r.action == OutboxAction.WRITE and r.entry_id]
            _send_writes(access, writes, delivery, user_id=user_id)
            # Changes committed while these were sent: theirs came too late for this list.
            rows = _due(user_id, timezone.now())
            if not rows:
                break
            claim.renew()
    except (tokens.KitsuLinkError, KitsuError) as exc:
        reason = exc.message if isinstance(exc, tokens.KitsuLinkError) else describe_sync_error(exc)
        waiting = list(KitsuOutbox.objects.filter(pk__in=[r.pk for r in rows], failed=False))
        _postpone(waiting, reason)
        delivery.waiting = len(waiting)
        logger.info("Changes of user %s for Kitsu wait: %s", user_id, reason)
    finally:
        claim.release()
    return delivery


def users_with_due_changes(*, now: datetime | None = None) -> list[int]:
    """Users whose queued changes are due (beat delivers them, should a request be lost)."""
    now = now or timezone.now()
    due = KitsuOutbox.objects.filter(failed=False, next_attempt_at__lte=now)
    return list(due.values_list("user_id", flat=True).distinct().order_by("user_id"))
