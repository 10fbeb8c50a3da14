"""How the sync task comes back after the faults the worker tests provoke, checked fast and in
process: the retry requests themselves (countdown, cause) are recorded instead of sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import Retry
from django.db import OperationalError
from django.utils import timezone

from kitsu_sync import tasks
from kitsu_sync.models import KitsuSyncState, SyncOutcome, SyncRun, SyncStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def retries_asked(monkeypatch: Any) -> list[dict[str, Any]]:
    """Each `self.retry(...)` of the sync task, recorded (and raised as Celery does)."""
    asked: list[dict[str, Any]] = []
    task = tasks.sync_library._get_current_object()

    def retry(**options: Any) -> Retry:
        asked.append(options)
        return Retry(when=options.get("countdown"))

    monkeypatch.setattr(task, "retry", retry)
    return asked


def test_a_pool_process_killed_mid_sync_sends_the_task_again_after_the_claim_lapses() -> None:
    task = tasks.sync_library._get_current_object()
    assert task.retry_on_worker_lost
    assert task.default_retry_delay > tasks.sync.CLAIM_TTL.total_seconds()
    assert task.default_retry_delay < 3600, "below the broker's visibility timeout"


@pytest.mark.parametrize(("retries", "comes_back"), [(0, False), (1, True)])
def test_a_retry_that_meets_a_held_claim_comes_back_when_the_claim_lapses(
    sandbox: Any,
    linked_user: Any,
    retries_asked: list[dict[str, Any]],
    retries: int,
    comes_back: bool,
) -> None:
    user = linked_user("claimed", sandbox=sandbox)
    # Left by an earlier attempt that lost the database and could not release it.
    KitsuSyncState.objects.create(
        user=user,
        sync_claimed_until=timezone.now() + timedelta(seconds=30),
        last_sync_status=SyncStatus.RUNNING,
    )

    tasks.sync_library.apply(args=(user.pk, "schedule", False), retries=retries)

    assert SyncRun.objects.get(user=user).outcome == SyncOutcome.SKIPPED
    if comes_back:
        [asked] = retries_asked
        assert 30 < asked["countdown"] <= 36
    else:
        assert retries_asked == [], "a duplicate request is dropped, not repeated"


def test_a_sync_that_meets_a_delivery_of_changes_comes_back_in_seconds(
    sandbox: Any, linked_user: Any, retries_asked: list[dict[str, Any]]
) -> None:
    user = linked_user("delivering", sandbox=sandbox)
    # A delivery of Revenge's changes holds the claim; the status stays the sync's "queued".
    KitsuSyncState.objects.create(
        user=user,
        sync_claimed_until=timezone.now() + timedelta(minutes=5),
        last_sync_status=SyncStatus.QUEUED,
    )

    tasks.sync_library.apply(args=(user.pk, "manual", False))

    [asked] = retries_asked
    assert 2 <= asked["countdown"] <= 6


def test_a_database_outage_before_the_run_is_recorded_is_retried_with_backoff(
    monkeypatch: Any, retries_asked: list[dict[str, Any]]
) -> None:
    outage = OperationalError("connection refused")

    def refused(**options: Any) -> Any:
        raise outage

    monkeypatch.setattr("kitsu_sync.services.sync.run_sync", refused)

    tasks.sync_library.apply(args=(7, "schedule", False), retries=2)

    [asked] = retries_asked
    assert asked["exc"] is outage
    assert tasks.RETRY_BASE_SECONDS * 2 <= asked["countdown"] <= tasks.RETRY_BASE_SECONDS * 4
