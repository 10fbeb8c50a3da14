"""A Celery worker killed with SIGKILL in the middle of an import: the task comes back (the
pool child's death is noticed at once; a whole worker's unacknowledged message is redelivered by
the broker after its visibility timeout) and the import finishes, each entry stored once."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync import tasks
from kitsu_sync.models import KitsuSyncState, LibraryEntry, SyncOutcome, SyncRun, SyncStatus
from kitsu_sync.services.sync import ABANDONED_RUN
from tests.celery_worker import routed_to, wait_for, worker_environment
from tests.reliability.checks import Baseline, assert_in_step_with_kitsu, assert_readable
from tests.reliability.workers import broker_at, unique_queue, worker_process
from tests.sync_support import visible_anime_entries

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Each library page takes this long, so that a kill lands mid-import.
PAGE_LATENCY_MS = 1200


def first_page_stored(user: Any) -> bool:
    """The worker's sync holds the claim and has stored a page."""
    return KitsuSyncState.objects.filter(
        user=user, last_sync_status=SyncStatus.RUNNING, progress_done__gte=500
    ).exists()


def synced(user: Any) -> bool:
    return KitsuSyncState.objects.filter(user=user, last_sync_status=SyncStatus.SUCCESS).exists()


def assert_history_explains_the_lost_run(user: Any, baseline: Baseline) -> None:
    runs = list(SyncRun.objects.filter(user=user).exclude(pk__in=baseline.runs).order_by("pk"))
    assert not [run for run in runs if run.outcome == SyncOutcome.RUNNING]
    abandoned, *_, last = runs
    assert abandoned.outcome == SyncOutcome.FAILED
    assert abandoned.finished_at is not None
    assert abandoned.errors[-1]["reason"] == ABANDONED_RUN
    assert_readable(abandoned.errors[-1]["reason"])
    assert last.outcome == SyncOutcome.SUCCESS, last.errors


def test_a_killed_pool_process_sends_the_sync_again_and_it_finishes_once(
    transactional_db: None,
    sandbox_factory: Any,
    linked_user: Any,
    worker_logs: Any,
    partly_imported: Any,
) -> None:
    sandbox = sandbox_factory(users=1, entries=1600)
    user = linked_user("killed-child", sandbox=sandbox)
    baseline = partly_imported(user, sandbox)
    sandbox.set_latency(PAGE_LATENCY_MS)
    queue = unique_queue()
    environment = worker_environment(
        sandbox,
        RELIABILITY_CLAIM_TTL="3",
        RELIABILITY_WORKER_LOST_RETRY_SECONDS="4",
        RELIABILITY_RETRY_SECONDS="1",
    )

    with (
        worker_process(
            log_dir=worker_logs, queue=queue, environment=environment, pool="prefork", concurrency=1
        ) as worker,
        routed_to(queue),
    ):
        tasks.sync_library.delay(user.pk, "manual", False)
        wait_for(lambda: first_page_stored(user), timeout=30, what="the first page to be stored")
        [child] = worker.children()
        os.kill(child, signal.SIGKILL)

        wait_for(lambda: synced(user), timeout=60, what="the sync to be sent again and finish")

    assert "WorkerLostError" in worker.log_text()
    sandbox.set_latency(0)
    baseline.assert_intact()
    assert_in_step_with_kitsu(user, sandbox)
    assert LibraryEntry.objects.filter(user=user).count() == len(visible_anime_entries(sandbox))
    assert_history_explains_the_lost_run(user, baseline)
    state = KitsuSyncState.objects.get(user=user)
    assert state.sync_claimed_until is None
    assert state.next_sync_at > timezone.now()


def test_a_killed_worker_s_sync_is_redelivered_by_the_broker_and_finishes_once(
    transactional_db: None,
    sandbox_factory: Any,
    linked_user: Any,
    worker_logs: Any,
    private_redis: Any,
    partly_imported: Any,
) -> None:
    sandbox = sandbox_factory(users=1, entries=1600)
    user = linked_user("killed-worker", sandbox=sandbox)
    baseline = partly_imported(user, sandbox)
    sandbox.set_latency(PAGE_LATENCY_MS)
    queue = unique_queue()
    # Production's order, in seconds: claim (10 min) < every retry delay's cap (30 min) <
    # visibility timeout (1 h). A countdown past the visibility timeout would be redelivered.
    timings = {"RELIABILITY_CLAIM_TTL": "4", "RELIABILITY_RETRY_SECONDS": "1"}

    with broker_at(private_redis.url), routed_to(queue):
        with worker_process(
            log_dir=worker_logs,
            queue=queue,
            environment=worker_environment(sandbox, **timings),
            broker_url=private_redis.url,
        ) as first:
            tasks.sync_library.delay(user.pk, "manual", False)
            wait_for(lambda: first_page_stored(user), timeout=30, what="the first page")
            first.kill()
        assert private_redis.client().hlen("unacked") == 1, "the message waits, unacknowledged"

        with worker_process(
            log_dir=worker_logs,
            queue=queue,
            environment=worker_environment(sandbox, RELIABILITY_VISIBILITY_TIMEOUT="12", **timings),
            broker_url=private_redis.url,
        ):
            wait_for(lambda: synced(user), timeout=60, what="the redelivered sync to finish")
            wait_for(
                lambda: (
                    private_redis.client().hlen("unacked") == 0
                    and private_redis.client().llen(queue) == 0
                ),
                what="the message to be acknowledged",
            )

    sandbox.set_latency(0)
    baseline.assert_intact()
    assert_in_step_with_kitsu(user, sandbox)
    assert_history_explains_the_lost_run(user, baseline)
