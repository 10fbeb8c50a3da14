"""Celery tasks: primary keys in, one service call, retries only for what a retry can fix.

Every task is idempotent (syncs upsert and hold a per-user claim), so `acks_late` is safe: a
task lost with its worker is delivered again. Retry delays are capped well below the broker's
visibility timeout (1 h), so a waiting retry is never delivered twice.
"""

from __future__ import annotations

import random

from celery import shared_task
from celery.app.task import Task

from kitsu_sync.services import sync

RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 30 * 60
MAX_RETRIES = 5


def retry_countdown(retries: int) -> float:
    """Exponential backoff with jitter: half the delay is fixed, half is random."""
    delay = min(RETRY_BASE_SECONDS * 2**retries, RETRY_MAX_SECONDS)
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=45 * 60,
    time_limit=50 * 60,
)
def sync_library(self: Task, user_id: int, trigger: str, full: bool = False) -> None:
    run = sync.run_sync(user_id=user_id, trigger=trigger, full=full)
    if sync.should_retry(run) and self.request.retries < MAX_RETRIES:
        raise self.retry(countdown=retry_countdown(self.request.retries))


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES, soft_time_limit=60, time_limit=90)
def push_library_entry(self: Task, entry_id: int) -> None:
    try:
        sync.push_library_entry(entry_id=entry_id)
    except Exception as exc:
        # SyncBusy, a Kitsu outage, a refresh held by another worker: each says if it passes.
        if not getattr(exc, "retryable", False):
            raise
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from exc


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def dispatch_due_syncs() -> int:
    return sync.dispatch_due_syncs()
