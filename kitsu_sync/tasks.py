"""Celery tasks: primary keys in, one service call, retries only for what a retry can fix.

Every task is idempotent (syncs upsert and hold a per-user claim), so `acks_late` is safe: a
task lost with its worker is delivered again. Retry delays are capped well below the broker's
visibility timeout (CELERY_VISIBILITY_TIMEOUT, at least 1 h), so a waiting retry is never
delivered twice.
"""

from __future__ import annotations

import random

from celery import shared_task
from celery.app.task import Task
from django.db import InterfaceError, OperationalError

from kitsu_sync import health, logcontext
from kitsu_sync.models import NoticeDelivery, SyncOutcome
from kitsu_sync.services import mapping_data, notifications, outbox, schedule, scrobble, sync

RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 30 * 60
MAX_RETRIES = 5
# A delivery that meets a running sync looks again every few seconds for about a minute;
# beat's drain_outbox takes over after that.
DELIVERY_RETRIES = 30
# A sync whose pool process died (OOM killer, SIGKILL) is sent again after this long: by then
# the claim the dead process held has lapsed.
WORKER_LOST_RETRY_SECONDS = sync.CLAIM_TTL.total_seconds() + 60


def retry_countdown(retries: int) -> float:
    """Exponential backoff with jitter: half the delay is fixed, half is random."""
    delay = min(RETRY_BASE_SECONDS * 2**retries, RETRY_MAX_SECONDS)
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=MAX_RETRIES,
    # Without this, Celery acknowledges the message of a task whose pool process was killed,
    # and the sync is gone; this sends it again (at most MAX_RETRIES times).
    retry_on_worker_lost=True,
    default_retry_delay=WORKER_LOST_RETRY_SECONDS,
    soft_time_limit=45 * 60,
    time_limit=50 * 60,
)
def sync_library(self: Task, user_id: int, trigger: str, full: bool = False) -> None:
    try:
        run = sync.run_sync(user_id=user_id, trigger=trigger, full=full)
    except (OperationalError, InterfaceError) as exc:
        # The database went away (restart, failover) before the run could be recorded.
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc
    if self.request.retries >= MAX_RETRIES:
        return
    if sync.should_retry(run):
        raise self.retry(countdown=retry_countdown(self.request.retries))
    if sync.waits_for_a_delivery(run):
        # A delivery holds the claim for the few seconds it sends: run right after it.
        raise self.retry(countdown=random.uniform(2, 6))  # noqa: S311
    if run.outcome == SyncOutcome.SKIPPED and self.request.retries:
        # The claim may be this task's own, left by an earlier attempt that lost the database
        # and could not give it back: try again once it lapses instead of dropping the sync.
        countdown = sync.claim_lapses_in(user_id=user_id) + random.uniform(1, 5)  # noqa: S311
        raise self.retry(countdown=countdown)


@shared_task(
    bind=True, acks_late=True, max_retries=DELIVERY_RETRIES, soft_time_limit=120, time_limit=150
)
def deliver_outbox(self: Task, user_id: int) -> None:
    try:
        with logcontext.bound(user_id=user_id):
            outbox.deliver(user_id=user_id)
    except outbox.OutboxBusy as exc:
        # A sync or another delivery holds the user's claim: it sends these changes unless
        # they arrived after it listed them, so look again shortly.
        raise self.retry(exc=exc, countdown=random.uniform(1, 3)) from exc  # noqa: S311


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def drain_outbox() -> int:
    """Deliver the changes whose own request was lost (the broker was down, say)."""
    users = outbox.users_with_due_changes()
    for user_id in users:
        deliver_outbox.delay(user_id)
    return len(users)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def dispatch_due_syncs() -> int:
    queued = schedule.dispatch_due_syncs()
    # The health endpoint's "last successful beat tick": beat, broker and a worker all work.
    health.record_beat_tick()
    return queued


@shared_task(acks_late=True, soft_time_limit=10 * 60, time_limit=12 * 60)
def update_mapping_datasets() -> int:
    """Download the mapping datasets that are due (beat asks every hour)."""
    return sum(result.records for result in mapping_data.update_due_datasets())


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def retry_unmatched() -> int:
    """Unmatched items that Kitsu or the media server could not be asked about, tried again."""
    return scrobble.retry_due_unmatched()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def prune_scrobble_records() -> int:
    """Watch reports past the repeat window and stale idempotent answers, deleted."""
    return scrobble.prune_records()


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=notifications.MAX_SEND_ATTEMPTS - 1,
    soft_time_limit=60,
    time_limit=90,
)
def send_notice(self: Task, notice_id: int) -> str:
    """Send a notice through Apprise; a refused or unreachable service is tried again later."""
    delivery = notifications.send_notice(notice_id=notice_id)
    if delivery == NoticeDelivery.FAILED and notifications.may_retry(notice_id=notice_id):
        raise self.retry(countdown=retry_countdown(self.request.retries))
    return delivery


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def notify_conditions() -> int:
    """Shows waiting too long for a match are notified, and notices whose task was lost (the
    broker was down) are sent again."""
    notice_ids = notifications.check_unmatched() + notifications.lost_notices()
    for notice_id in notice_ids:
        send_notice.delay(notice_id)
    return len(notice_ids)
