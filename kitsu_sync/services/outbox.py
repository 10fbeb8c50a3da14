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

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kitsu_sync.db import Claim
from kitsu_sync.kitsu_api import KitsuError, KitsuNotFound, KitsuUnauthorized
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
    if entry.kitsu_entry_id is None:
        _take_over_pending_removal(entry)
    _queue(
        entry.user_id, entry.anime_id, entry=entry, action=OutboxAction.WRITE, kitsu_entry_id=None
    )


def _take_over_pending_removal(entry: LibraryEntry) -> None:
    """An anime removed and added again before the removal reached Kitsu: Kitsu still has its
    entry, so the new one takes it over (a whole update, not a create Kitsu would refuse)."""
    pending = (
        KitsuOutbox.objects.filter(
            user_id=entry.user_id, anime_id=entry.anime_id, action=OutboxAction.DELETE
        )
        .values_list("kitsu_entry_id", flat=True)
        .first()
    )
    if pending is not None:
        entry.kitsu_entry_id = pending
        entry.synced_values = None
        entry.save(update_fields=["kitsu_entry_id", "synced_values"])


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


def _as_read(rows: list[KitsuOutbox]) -> Q:
    """These rows as they were read: a row queued again since then (the change arrived while
    the delivery sent the older one) matches no more, so it is neither deleted nor marked."""
    condition = Q(pk__in=[])
    for row in rows:
        condition |= Q(pk=row.pk, queued_at=row.queued_at, action=row.action)
    return condition


def _send_deletes(access: tokens.KitsuAccess, rows: list[KitsuOutbox], delivery: Delivery) -> None:
    for row in rows:
        try:
            access.client.delete_library_entry(token=access.token, entry_id=row.kitsu_entry_id)
        except KitsuNotFound:
            pass  # gone already: what the removal wanted
        except KitsuError as exc:
            if exc.retryable or isinstance(exc, KitsuUnauthorized):
                raise
            # Kitsu will not remove it (the entry is another account's, say): say so.
            KitsuOutbox.objects.filter(_as_read([row])).update(
                failed=True, last_error=describe_sync_error(exc)[:2000]
            )
            delivery.refused += 1
            continue
        KitsuOutbox.objects.filter(_as_read([row])).delete()
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
    refused = [row for row in rows if row.anime.kitsu_id in outcome.refused]
    if refused:
        for row in refused:
            KitsuOutbox.objects.filter(_as_read([row])).update(
                failed=True, last_error=outcome.refused[row.anime.kitsu_id][:2000]
            )
        delivery.refused += len(refused)
    if outcome.stopped_by is not None:
        raise outcome.stopped_by
    # The rest is done: sent, or as Kitsu has it already (a sync sent it meanwhile), or taken
    # by Kitsu with an answer that could not be read (the next sync compares both sides).
    done = [row for row in rows if row not in refused]
    KitsuOutbox.objects.filter(_as_read(done)).delete()


def _drop_orphans(user_id: int) -> None:
    """Writes whose entry is gone (removed by a sync, an unlink, the admin): nothing to send."""
    KitsuOutbox.objects.filter(
        user_id=user_id, action=OutboxAction.WRITE, entry__isnull=True
    ).delete()


def deliver(*, user_id: int) -> Delivery:
    """Send this user's due changes to Kitsu now. Raises OutboxBusy while a sync holds the
    user's claim; a failure a later attempt may fix postpones the rows (with backoff)."""
    delivery = Delivery()
    if settings.KITSU_SYNC_DIRECTION == SyncDirection.IMPORT_ONLY:
        return delivery  # switched to import only since: the changes stay here
    _drop_orphans(user_id)
    if not _due(user_id, timezone.now()):
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
            # Read under the claim: what a sync sent meanwhile is no longer listed.
            rows = _due(user_id, timezone.now())
            if not rows:
                break
            _send_deletes(access, [r for r in rows if r.action == OutboxAction.DELETE], delivery)
            writes = [r for r in rows if r.action == OutboxAction.WRITE and r.entry_id]
            _send_writes(access, writes, delivery, user_id=user_id)
            claim.renew()
    except (tokens.KitsuLinkError, KitsuError) as exc:
        reason = exc.message if isinstance(exc, tokens.KitsuLinkError) else describe_sync_error(exc)
        waiting = list(
            KitsuOutbox.objects.filter(
                user_id=user_id, failed=False, next_attempt_at__lte=timezone.now()
            )
        )
        _postpone(waiting, reason)
        delivery.waiting = len(waiting)
        logger.info("Changes of user %s for Kitsu wait: %s", user_id, reason)
    finally:
        claim.release()
    return delivery


def users_with_due_changes(*, now: datetime | None = None) -> list[int]:
    """Users whose queued changes are due (beat delivers them, should a request be lost)."""
    if settings.KITSU_SYNC_DIRECTION == SyncDirection.IMPORT_ONLY:
        return []
    now = now or timezone.now()
    due = KitsuOutbox.objects.filter(failed=False, next_attempt_at__lte=now)
    return list(due.values_list("user_id", flat=True).distinct().order_by("user_id"))
