"""Kitsu misbehaving in the middle of a paginated import (the second of three pages): 5xx bursts,
Rack::Attack's plain-text 429, reset connections, answers slower than the client's timeout, and
bodies that are not the JSON they should be (cut short, or a proxy's HTML error page).

Each kind is tried twice: a burst shorter than the client's retry budget (the import completes),
then a fault that outlasts it (the run stops with a readable, retryable error, keeps what it
stored, deletes nothing; the next run resumes and ends in step with Kitsu).
"""

from __future__ import annotations

from typing import Any

import pytest

from kitsu_sync.kitsu_client import get_transport
from kitsu_sync.models import KitsuSyncState, SyncOutcome, SyncStatus, SyncTrigger
from kitsu_sync.services.sync import run_sync, should_retry
from tests.reliability.checks import Baseline, assert_in_step_with_kitsu, assert_readable
from tests.reliability.faults import FAULTS, change_on_kitsu, fault_mid_import, faults_fired
from tests.sync_support import visible_anime_entries

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("fault", list(FAULTS))
def test_kitsu_failing_mid_import_is_retried_within_bounds_and_the_next_run_resumes(
    paged_kitsu: Any, linked_user: Any, retry_sleeps: list[float], fault: str
) -> None:
    rule, explanation = FAULTS[fault]
    attempts = get_transport().retry.attempts
    user = linked_user("viewer", sandbox=paged_kitsu)
    first = run_sync(user_id=user.pk, trigger=SyncTrigger.LINK)
    assert first.outcome == SyncOutcome.SUCCESS, first.errors
    entries = visible_anime_entries(paged_kitsu)
    total = len(entries)
    assert total > 1000, "three pages of 500"
    baseline = Baseline.of(user)
    changed = change_on_kitsu(paged_kitsu, [entries[3], entries[-3]], "changed before the burst")

    # A burst one attempt shorter than the client's budget: the import completes.
    fault_mid_import(paged_kitsu, rule, count=attempts - 1)
    burst = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE, full=True)

    assert burst.outcome == SyncOutcome.SUCCESS, burst.errors
    assert faults_fired(paged_kitsu) == attempts - 1
    assert len(retry_sleeps) == attempts - 1, "one backoff before each repeat"
    assert all(0 <= wait <= get_transport().retry.backoff_max for wait in retry_sleeps)
    assert_in_step_with_kitsu(user, paged_kitsu)
    baseline.assert_intact(changed_on_kitsu=changed)

    # A fault that outlasts the budget: the run stops, readable and retryable.
    baseline = Baseline.of(user)
    changed = change_on_kitsu(paged_kitsu, [entries[5], entries[-5]], "changed before the outage")
    retry_sleeps.clear()
    fault_mid_import(paged_kitsu, rule, count=None)
    failed = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE, full=True)

    assert failed.outcome == SyncOutcome.FAILED
    assert faults_fired(paged_kitsu) == attempts, (
        "the failing page was tried exactly `attempts` times"
    )
    assert len(retry_sleeps) == attempts - 1
    reason = failed.errors[-1]["reason"]
    assert explanation in reason
    assert "tried again later" in reason
    assert_readable(reason)
    assert failed.errors[-1]["retryable"] is True
    assert should_retry(failed), "the Celery task will try again with backoff"
    assert failed.fetched >= 500, "the first page was read and stored"
    state = KitsuSyncState.objects.get(user=user)
    assert state.last_sync_status == SyncStatus.FAILED
    assert state.errors[-1]["reason"] == reason
    assert state.sync_claimed_until is None
    baseline.assert_intact(changed_on_kitsu=changed)

    # Kitsu recovers; meanwhile an entry already read and one not yet read change again.
    changed |= change_on_kitsu(paged_kitsu, [entries[5], entries[-7]], "changed during the outage")
    paged_kitsu.set_faults([])
    resumed = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)

    assert resumed.outcome == SyncOutcome.SUCCESS, resumed.errors
    assert not resumed.full
    assert resumed.fetched < total - 400, "it resumed from the stored cursor"
    assert_in_step_with_kitsu(user, paged_kitsu)
    baseline.assert_intact(changed_on_kitsu=changed)
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.SUCCESS
