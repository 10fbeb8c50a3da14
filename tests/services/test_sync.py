"""Sync orchestration: queueing, the per-user claim, scheduling, and what a run records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync.mapping import LIBRARY_FIELDSETS
from kitsu_sync.models import (
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    SyncOutcome,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from kitsu_sync.services import sync as sync_service
from kitsu_sync.services.schedule import (
    dispatch_due_syncs,
    full_pass_due,
    next_sync_time,
    queued_expiry,
    request_sync,
    schedule_offset,
)
from kitsu_sync.services.sync import CLAIM_TTL, run_sync, should_retry, waits_for_a_delivery

pytestmark = pytest.mark.django_db


def request(user: Any, capture: Callable[..., Any], **options: Any) -> bool:
    with capture(execute=True):
        return request_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL, **options)


def test_a_requested_sync_is_queued_once_the_transaction_commits(
    linked_user: Any, queued_tasks: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    user = linked_user()

    with django_capture_on_commit_callbacks() as callbacks:
        assert request_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)
        assert queued_tasks == []
    for callback in callbacks:
        callback()

    assert queued_tasks == [(user.pk, "manual", False)]
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.QUEUED


def test_a_second_request_while_one_is_queued_queues_nothing(
    linked_user: Any, queued_tasks: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    user = linked_user()

    assert request(user, django_capture_on_commit_callbacks)
    assert not request(user, django_capture_on_commit_callbacks, full=True)

    assert len(queued_tasks) == 1


def test_a_queued_sync_that_never_started_stops_blocking_after_a_while(
    linked_user: Any, queued_tasks: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    user = linked_user()
    request(user, django_capture_on_commit_callbacks)
    KitsuSyncState.objects.filter(user=user).update(
        updated_at=timezone.now() - queued_expiry() - timedelta(minutes=1)
    )

    assert request(user, django_capture_on_commit_callbacks, full=True)
    assert queued_tasks[-1] == (user.pk, "manual", True)


def test_a_queued_sync_blocks_for_as_long_as_the_broker_may_still_deliver_it(
    linked_user: Any,
    queued_tasks: list[Any],
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200}
    user = linked_user()
    request(user, django_capture_on_commit_callbacks)
    KitsuSyncState.objects.filter(user=user).update(
        updated_at=timezone.now() - timedelta(minutes=90)
    )

    assert queued_expiry() == timedelta(hours=2)
    assert not request(user, django_capture_on_commit_callbacks)
    assert len(queued_tasks) == 1


def test_no_sync_is_queued_while_one_is_running(
    linked_user: Any, queued_tasks: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    user = linked_user()
    KitsuSyncState.objects.create(
        user=user,
        last_sync_status=SyncStatus.RUNNING,
        sync_claimed_until=timezone.now() + CLAIM_TTL,
    )

    assert not request(user, django_capture_on_commit_callbacks)
    assert queued_tasks == []


def test_no_sync_is_queued_without_a_usable_link(
    linked_user: Any,
    make_user: Any,
    queued_tasks: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    relink = linked_user("relink")
    KitsuToken.objects.filter(user=relink).update(needs_relink=True)
    unlinked = make_user("unlinked")

    assert not request(relink, django_capture_on_commit_callbacks)
    assert not request(unlinked, django_capture_on_commit_callbacks)
    assert queued_tasks == []


def test_the_dispatcher_queues_due_users_only_longest_overdue_first(
    linked_user: Any,
    make_user: Any,
    queued_tasks: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    now = timezone.now()
    never = linked_user("never")  # no state yet: due
    due = linked_user("due")
    KitsuSyncState.objects.create(user=due, next_sync_at=now - timedelta(hours=2))
    later = linked_user("later")
    KitsuSyncState.objects.create(user=later, next_sync_at=now + timedelta(hours=2))
    relink = linked_user("relink")
    KitsuSyncState.objects.create(user=relink, next_sync_at=now - timedelta(days=3))
    KitsuToken.objects.filter(user=relink).update(needs_relink=True)
    queued = linked_user("queued")
    KitsuSyncState.objects.create(
        user=queued, next_sync_at=now - timedelta(days=1), last_sync_status=SyncStatus.QUEUED
    )
    make_user("unlinked")

    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_syncs(now=now, limit=1) == 1
    assert queued_tasks == [(never.pk, "schedule", False)]

    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_syncs(now=now) == 1
    assert [args[0] for args in queued_tasks] == [never.pk, due.pk]


def test_the_dispatcher_does_nothing_when_syncing_is_switched_off(
    linked_user: Any, queued_tasks: list[Any], settings: Any
) -> None:
    linked_user()
    settings.KITSU_SYNC_ENABLED = False

    assert dispatch_due_syncs() == 0
    assert queued_tasks == []


def test_each_user_keeps_a_fixed_share_of_the_interval_so_syncs_spread_out(
    settings: Any,
) -> None:
    interval = timedelta(hours=24)
    offsets = [schedule_offset(user_id, interval) for user_id in range(1, 1001)]

    assert offsets == [schedule_offset(user_id, interval) for user_id in range(1, 1001)]
    assert all(timedelta(0) <= offset < interval * 0.1 for offset in offsets)
    # Spread: every tenth of the window holds some of the thousand users.
    buckets = {int(offset / (interval * 0.01)) for offset in offsets}
    assert buckets == set(range(10))

    settings.KITSU_SYNC_INTERVAL = interval
    now = timezone.now()
    assert next_sync_time(user_id=7, now=now) == now + interval + schedule_offset(7, interval)
    assert next_sync_time(user_id=7, now=now, failed=True) < now + timedelta(hours=2)


def test_a_run_records_its_outcome_schedule_and_progress(
    kitsu: Any, linked_user: Any, settings: Any
) -> None:
    user = linked_user()
    calls: list[tuple[int, int | None]] = []

    run = run_sync(
        user_id=user.pk,
        trigger=SyncTrigger.MANUAL,
        progress=lambda done, total: calls.append((done, total)),
    )

    state = KitsuSyncState.objects.get(user=user)
    total = LibraryEntry.objects.filter(user=user).count()
    assert calls == [(total, total)]
    assert run.outcome == SyncOutcome.SUCCESS
    assert run.full, "a first sync reads the whole library"
    assert run.requests_made == 1
    assert state.last_sync_status == SyncStatus.SUCCESS
    assert state.last_sync_at == run.finished_at
    assert state.entries_synced == total
    assert state.errors == []
    assert state.sync_claimed_until is None
    assert state.next_sync_at == next_sync_time(user_id=user.pk, now=run.finished_at)
    assert state.last_full_sync_at == run.finished_at


def test_a_sync_is_skipped_while_another_holds_the_claim(kitsu: Any, linked_user: Any) -> None:
    user = linked_user()
    held_until = timezone.now() + CLAIM_TTL
    KitsuSyncState.objects.create(
        user=user, sync_claimed_until=held_until, last_sync_status=SyncStatus.RUNNING
    )
    kitsu.reset(data=False, tokens=False)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SKIPPED
    assert "Another sync" in run.errors[0]["reason"]
    assert KitsuSyncState.objects.get(user=user).sync_claimed_until == held_until
    assert kitsu.stats()["total"] == 0
    assert not should_retry(run)
    assert not waits_for_a_delivery(run)


def test_a_sync_that_meets_a_delivery_of_revenges_changes_runs_right_after_it(
    kitsu: Any, linked_user: Any
) -> None:
    user = linked_user()
    # A delivery holds the claim and leaves the status as it was (queued, for this sync).
    KitsuSyncState.objects.create(
        user=user,
        sync_claimed_until=timezone.now() + CLAIM_TTL,
        last_sync_status=SyncStatus.QUEUED,
    )

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SKIPPED
    assert waits_for_a_delivery(run)
    assert "tried again in a few seconds" in run.errors[0]["reason"]


def test_an_expired_claim_of_a_dead_worker_does_not_block_the_user(
    kitsu: Any, linked_user: Any
) -> None:
    user = linked_user()
    KitsuSyncState.objects.create(
        user=user,
        last_sync_status=SyncStatus.RUNNING,
        sync_claimed_until=timezone.now() - timedelta(seconds=1),
    )

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)

    assert run.outcome == SyncOutcome.SUCCESS


def test_a_sync_whose_claim_was_taken_over_stops_without_writing_more(
    kitsu_at: Any, sandbox_factory: Any, linked_user: Any
) -> None:
    sandbox = kitsu_at(sandbox_factory(users=1, entries=1100))
    user = linked_user(sandbox=sandbox)
    stolen = timezone.now() + timedelta(hours=1)

    def steal_after_first_page(done: int, total: int | None) -> None:
        KitsuSyncState.objects.filter(user=user).update(sync_claimed_until=stolen)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE, progress=steal_after_first_page)

    assert run.outcome == SyncOutcome.FAILED
    assert "another sync took over" in run.errors[-1]["reason"]
    assert LibraryEntry.objects.filter(user=user).count() == 500
    state = KitsuSyncState.objects.get(user=user)
    assert state.sync_claimed_until == stolen  # the new owner's claim is left alone


def test_a_user_without_a_link_gets_a_reason_to_act_on(db: None, make_user: Any) -> None:
    user = make_user("nolink")

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.ADMIN)

    assert run.outcome == SyncOutcome.FAILED
    assert "link one first" in run.errors[0]["reason"]
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.FAILED


def test_a_link_needing_relink_is_not_synced_and_nothing_is_deleted(
    kitsu: Any, linked_user: Any
) -> None:
    user = linked_user()
    run_sync(user_id=user.pk, trigger=SyncTrigger.LINK)
    count = LibraryEntry.objects.filter(user=user).count()
    KitsuToken.objects.filter(user=user).update(
        needs_relink=True, relink_reason="Kitsu rejected the refresh token"
    )
    kitsu.reset(data=False, tokens=False)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE, full=True)

    assert run.outcome == SyncOutcome.FAILED
    assert "link your Kitsu account again" in run.errors[0]["reason"]
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.NEEDS_RELINK
    assert LibraryEntry.objects.filter(user=user).count() == count
    assert kitsu.stats()["total"] == 0


def test_a_kitsu_outage_is_retried_and_a_refused_entry_is_not(kitsu: Any, linked_user: Any) -> None:
    user = linked_user()
    kitsu.set_faults([{"kind": "status", "status": 502, "count": None, "method": "GET"}])

    outage = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)

    assert should_retry(outage)
    state = KitsuSyncState.objects.get(user=user)
    assert state.next_sync_at < timezone.now() + timedelta(hours=2)
    partial = SyncRun(outcome=SyncOutcome.PARTIAL, errors=[{"reason": "x", "retryable": False}])
    assert not should_retry(partial)


def test_a_full_pass_is_due_first_then_weekly_and_a_failed_run_resumes_first(
    linked_user: Any, settings: Any
) -> None:
    settings.KITSU_SYNC_FULL_INTERVAL = timedelta(days=7)
    user = linked_user()
    now = timezone.now()
    state = KitsuSyncState.objects.create(user=user)
    assert full_pass_due(state, now)

    state.cursor_updated_at = now - timedelta(days=1)
    state.last_full_sync_at = now - timedelta(days=2)
    assert not full_pass_due(state, now)
    assert full_pass_due(state, now + timedelta(days=5))

    SyncRun.objects.create(
        user=user, trigger="schedule", direction="import_only", outcome=SyncOutcome.FAILED
    )
    assert not full_pass_due(state, now + timedelta(days=5))


def test_kitsu_refusing_a_sparse_field_is_answered_with_whole_pages(
    kitsu: Any, linked_user: Any, monkeypatch: Any, caplog: Any
) -> None:
    # A field this Kitsu does not know: it answers 400 "Invalid field" (code 104).
    unknown = {**LIBRARY_FIELDSETS, "anime": (*LIBRARY_FIELDSETS["anime"], "colour")}
    monkeypatch.setattr(sync_service, "LIBRARY_FIELDSETS", unknown)
    user = linked_user()

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL, full=True)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.created == LibraryEntry.objects.filter(user=user).count() > 0
    assert kitsu.stats()["by_status"]["400"] == 1, "refused once, then whole pages"
    assert "refused the sparse fieldsets" in caplog.text
    listed = [r for r in kitsu.requests_log("/api/edge/library-entries") if r["status"] == 200]
    assert listed
    assert all("fields" not in request["query"] for request in listed)
