"""Redis (broker and rate limiter) restarting, and PostgreSQL refusing connections, while real
workers sync several users: workers reconnect, failed syncs are retried, no user is synced
twice at once, and every user ends with a successful sync and nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from kitsu_sync import tasks
from kitsu_sync.models import KitsuSyncState, SyncOutcome, SyncRun, SyncStatus, SyncTrigger
from kitsu_sync.services.schedule import request_sync
from kitsu_sync.services.sync import ABANDONED_RUN, run_sync
from tests.celery_worker import current_database_url, routed_to, wait_for, worker_environment
from tests.reliability.checks import Baseline, assert_in_step_with_kitsu
from tests.reliability.workers import broker_at, unique_queue, worker_process

pytestmark = pytest.mark.django_db(transaction=True)

# Production's order in seconds: claim < retry delays' cap < broker visibility timeout.
TIMINGS = {
    "RELIABILITY_CLAIM_TTL": "3",
    "RELIABILITY_RETRY_SECONDS": "1",
}
# Each Kitsu answer takes this long, so that the fleet is still syncing when the fault lands.
LATENCY_MS = 600


@pytest.fixture
def imported_fleet(kitsu_at: Any, linked_user: Any) -> Callable[[Any, int], list[Any]]:
    """Make `size` users of `sandbox`, each linked to their own seeded Kitsu user and imported
    once (in this process), then made due for a full pass."""

    def make(sandbox: Any, size: int) -> list[Any]:
        kitsu_at(sandbox)
        users = []
        for index in range(1, size + 1):
            user = linked_user(f"fleet{index}", index, sandbox=sandbox)
            run = run_sync(user_id=user.pk, trigger=SyncTrigger.LINK)
            assert run.outcome == SyncOutcome.SUCCESS, run.errors
            users.append(user)
        KitsuSyncState.objects.filter(user__in=users).update(
            next_sync_at=timezone.now() - timedelta(minutes=1), last_full_sync_at=None
        )
        return users

    return make


def syncing(users: list[Any]) -> bool:
    return KitsuSyncState.objects.filter(
        user__in=users, last_sync_status=SyncStatus.RUNNING, progress_done__gt=0
    ).exists()


def all_synced_since(users: list[Any], moment: Any) -> bool:
    return KitsuSyncState.objects.filter(
        user__in=users, last_sync_status=SyncStatus.SUCCESS, last_sync_at__gt=moment
    ).count() == len(users)


def assert_never_synced_twice_at_once(user: Any) -> None:
    """Runs that held the claim (not skipped, not closed for a dead worker) never overlap."""
    runs = [
        run
        for run in SyncRun.objects.filter(user=user).order_by("started_at")
        if run.outcome != SyncOutcome.SKIPPED
        and not any(error["reason"] == ABANDONED_RUN for error in run.errors)
    ]
    for earlier, later in pairwise(runs):
        assert earlier.finished_at <= later.started_at, f"{earlier} overlaps {later}"


def assert_each_ends_successful_with_nothing_lost(
    users: list[Any], baselines: list[Baseline], sandbox: Any
) -> None:
    sandbox.set_latency(0)
    for index, (user, baseline) in enumerate(zip(users, baselines, strict=True), start=1):
        runs = SyncRun.objects.filter(user=user).exclude(outcome=SyncOutcome.SKIPPED)
        assert runs[0].outcome == SyncOutcome.SUCCESS, runs[0].errors
        assert not SyncRun.objects.filter(user=user, outcome=SyncOutcome.RUNNING).exists()
        assert KitsuSyncState.objects.get(user=user).sync_claimed_until is None
        baseline.assert_intact()
        assert_in_step_with_kitsu(user, sandbox, index)
        assert_never_synced_twice_at_once(user)


def test_a_sync_requested_while_the_broker_is_down_is_not_left_looking_queued(
    sandbox: Any, linked_user: Any, private_redis: Any
) -> None:
    user = linked_user("unqueued", sandbox=sandbox)
    KitsuSyncState.objects.create(user=user, last_sync_status=SyncStatus.SUCCESS)
    private_redis.stop()

    with broker_at(private_redis.url), pytest.raises(OperationalError):
        request_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)

    # Had it stayed "queued", Sync now and the scheduler would skip the user for an hour.
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.SUCCESS
    private_redis.start()
    queue = unique_queue()
    with broker_at(private_redis.url), routed_to(queue):
        assert request_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)
    assert private_redis.client().llen(queue) == 1
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.QUEUED


@pytest.mark.slow
def test_redis_restarting_during_a_fleet_sync_loses_no_sync(
    sandbox_factory: Any, imported_fleet: Any, worker_logs: Any, private_redis: Any
) -> None:
    sandbox = sandbox_factory(users=6, entries=700)
    users = imported_fleet(sandbox, 6)
    baselines = [Baseline.of(user) for user in users]
    sandbox.set_latency(LATENCY_MS)
    queue = unique_queue()
    environment = worker_environment(sandbox, RELIABILITY_VISIBILITY_TIMEOUT="15", **TIMINGS)
    started = timezone.now()

    with (
        broker_at(private_redis.url),
        routed_to(queue),
        worker_process(
            log_dir=worker_logs,
            queue=queue,
            environment=environment,
            broker_url=private_redis.url,
        ) as first,
        worker_process(
            log_dir=worker_logs,
            queue=queue,
            environment=environment,
            broker_url=private_redis.url,
        ) as second,
    ):
        tasks.dispatch_due_syncs.delay()
        wait_for(lambda: syncing(users), timeout=30, what="the fleet to be syncing")
        private_redis.restart()

        wait_for(
            lambda: all_synced_since(users, started),
            timeout=90,
            what="every user of the fleet to sync successfully",
        )
        wait_for(
            lambda: (
                private_redis.client().llen(queue) == 0
                and private_redis.client().hlen("unacked") == 0
            ),
            timeout=30,
            what="the queue to drain",
        )
        for worker in (first, second):
            assert worker.process.poll() is None, worker.log_text()[-3000:]
            assert "Connection to broker lost" in worker.log_text()

    assert_each_ends_successful_with_nothing_lost(users, baselines, sandbox)


@pytest.mark.slow
def test_postgresql_refusing_connections_fails_syncs_cleanly_and_they_are_retried(
    sandbox_factory: Any, imported_fleet: Any, worker_logs: Any, postgres_proxy: Any
) -> None:
    sandbox = sandbox_factory(users=3, entries=700)
    users = imported_fleet(sandbox, 3)
    baselines = [Baseline.of(user) for user in users]
    sandbox.set_latency(LATENCY_MS)
    queue = unique_queue()
    database_url = current_database_url().replace(
        "@127.0.0.1:5432/", f"@127.0.0.1:{postgres_proxy.port}/"
    )
    assert str(postgres_proxy.port) in database_url
    started = timezone.now()

    with (
        worker_process(
            log_dir=worker_logs,
            queue=queue,
            environment=worker_environment(sandbox, **TIMINGS),
            database_url=database_url,
            concurrency=3,
        ) as worker,
        routed_to(queue),
    ):
        for user in users:
            assert request_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)
        wait_for(lambda: syncing(users), timeout=30, what="the syncs to be under way")
        with postgres_proxy.refusing():
            wait_for(
                lambda: (
                    "lost the database" in worker.log_text()
                    or "OperationalError" in worker.log_text()
                ),
                timeout=30,
                what="a sync to notice the database is gone",
            )

        wait_for(
            lambda: all_synced_since(users, started),
            timeout=90,
            what="every sync to be retried and succeed",
        )

    failed = [
        run
        for run in SyncRun.objects.filter(user__in=users, outcome=SyncOutcome.FAILED)
        if run.started_at > started
    ]
    assert failed, "at least one sync met the outage"
    for run in failed:
        assert run.errors[-1]["reason"] in (
            ABANDONED_RUN,
            "The database was unavailable during the sync; it will be tried again later.",
        )
    assert_each_ends_successful_with_nothing_lost(users, baselines, sandbox)
