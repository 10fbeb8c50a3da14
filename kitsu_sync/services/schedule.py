"""When each user's library is synced: "Sync now", beat's dispatch, and the next time due.

`request_sync` asks for a sync (queued after the transaction commits, through the
`sync_requested` signal) unless one is already queued or running; `dispatch_due_syncs` is what
Celery beat runs every few minutes. Each user's next run is KITSU_SYNC_INTERVAL plus a fixed
per-user offset, so users linked together do not all sync together forever after.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from kitsu_sync.db import queued_expiry
from kitsu_sync.models import (
    KitsuSyncState,
    KitsuToken,
    SyncOutcome,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from kitsu_sync.signals import sync_requested

# After a failed sync the next scheduled attempt comes sooner than a full interval.
RETRY_FAILED_AFTER = timedelta(hours=1)
# Each user's schedule is shifted by a fixed share (up to this fraction) of the interval.
SCHEDULE_SPREAD = 0.1


def schedule_offset(user_id: int, interval: timedelta) -> timedelta:
    """A fixed, per-user share of the interval (the same in every process and every run)."""
    digest = hashlib.sha256(f"kitsu-sync:{user_id}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return interval * SCHEDULE_SPREAD * fraction


def next_sync_time(*, user_id: int, now: datetime, failed: bool = False) -> datetime:
    interval = settings.KITSU_SYNC_INTERVAL
    wait = min(interval, RETRY_FAILED_AFTER) if failed else interval
    return now + wait + schedule_offset(user_id, wait)


def _busy(now: datetime) -> Q:
    """A sync is running (its claim holds) or queued (and not lost)."""
    return Q(sync_claimed_until__gt=now) | Q(
        last_sync_status=SyncStatus.QUEUED, updated_at__gt=now - queued_expiry()
    )


def request_sync(*, user_id: int, trigger: str, full: bool = False) -> bool:
    """Queue a sync of this user's library once the current transaction commits.

    Returns False (and queues nothing) when the user has no usable Kitsu link, or when a sync
    is already queued or running. When the broker cannot take the task, its error propagates
    and the user is not left marked as queued.
    """
    if not KitsuToken.objects.filter(user_id=user_id, needs_relink=False).exists():
        return False
    state, _ = KitsuSyncState.objects.get_or_create(user_id=user_id)
    now = timezone.now()
    queued = (
        KitsuSyncState.objects.filter(pk=state.pk)
        .exclude(_busy(now))
        .update(last_sync_status=SyncStatus.QUEUED, updated_at=now)
    )
    if not queued:
        return False

    def send() -> None:
        try:
            sync_requested.send(
                sender=KitsuSyncState, user_id=user_id, trigger=str(trigger), full=full
            )
        except Exception:
            # Broker down (Redis restarting): a "queued" mark with no message would keep Sync
            # now and the scheduler away from this user for queued_expiry().
            KitsuSyncState.objects.filter(
                pk=state.pk, last_sync_status=SyncStatus.QUEUED, updated_at=now
            ).update(last_sync_status=state.last_sync_status)
            raise

    transaction.on_commit(send)
    return True


def dispatch_due_syncs(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Queue a sync for every linked user whose next sync time has passed (at most `limit`,
    default KITSU_SYNC_DISPATCH_LIMIT, longest overdue first). Returns how many were queued."""
    if not settings.KITSU_SYNC_ENABLED:
        return 0
    now = now or timezone.now()
    limit = settings.KITSU_SYNC_DISPATCH_LIMIT if limit is None else limit
    state = "user__kitsu_sync_state__"
    due = (
        KitsuToken.objects.due_for_sync(now)
        .exclude(**{f"{state}sync_claimed_until__gt": now})
        .exclude(
            **{
                f"{state}last_sync_status": SyncStatus.QUEUED,
                f"{state}updated_at__gt": now - queued_expiry(),
            }
        )
        .order_by(F(f"{state}next_sync_at").asc(nulls_first=True), "user_id")
        .values_list("user_id", flat=True)[:limit]
    )
    return sum(request_sync(user_id=user_id, trigger=SyncTrigger.SCHEDULE) for user_id in due)


def full_pass_due(state: KitsuSyncState, now: datetime) -> bool:
    """A full pass (which notices deletions) is due on the first sync and every
    KITSU_SYNC_FULL_INTERVAL; after a failed run, the next one first resumes from the cursor."""
    if state.cursor_updated_at is None:
        return True
    last_run = (
        SyncRun.objects.filter(user_id=state.user_id, dry_run=False)
        .exclude(outcome__in=[SyncOutcome.SKIPPED, SyncOutcome.RUNNING])
        .values_list("outcome", flat=True)
        .first()
    )
    if last_run == SyncOutcome.FAILED:
        return False
    last_full = state.last_full_sync_at
    return last_full is None or now - last_full >= settings.KITSU_SYNC_FULL_INTERVAL
