"""Celery tasks, with a real worker process on the real Redis broker and the test database."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.conf import settings
from django.utils import timezone

from kitsu_sync import tasks
from kitsu_sync.models import (
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    MappingDataset,
    SyncOutcome,
    SyncRun,
    SyncStatus,
)
from kitsu_sync.sandbox import SandboxConfig, SandboxServer, serve_in_thread
from kitsu_sync.services.schedule import request_sync
from tests.celery_worker import CeleryWorker, celery_worker, wait_for, worker_environment
from tests.sync_support import finished_runs

LIBRARY_ROUTE = "GET /api/edge/library-entries"


class WorkerSandbox:
    """The worker's own sandbox (a bigger library than the shared one), seen in-process."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.api_url = server.api_url
        self.oauth_url = server.oauth_url
        self.client_id = server.config.client_id
        self.client_secret = server.config.client_secret

    def credentials(self, index: int = 1) -> Any:
        return self.server.store.credentials()[index - 1]

    def stats(self) -> dict[str, Any]:
        return self.server.store.log.stats()

    def reset(self) -> None:
        self.server.store.reset()

    def anime_entries(self, index: int = 1) -> int:
        user_id = int(self.credentials(index).user_id)
        return sum(1 for e in self.server.store.entries_by_user[user_id] if e.kind == "anime")


@pytest.fixture(scope="module")
def worker_sandbox() -> Iterator[WorkerSandbox]:
    server = serve_in_thread(SandboxConfig(users=1, entries=1100))
    try:
        yield WorkerSandbox(server)
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def worker(
    django_db_setup: None, worker_sandbox: WorkerSandbox, tmp_path_factory: Any
) -> Iterator[CeleryWorker]:
    environment = worker_environment(worker_sandbox)
    with celery_worker(log_dir=tmp_path_factory.mktemp("celery"), environment=environment) as w:
        yield w


@pytest.fixture
def sandbox_for_worker(worker_sandbox: WorkerSandbox) -> WorkerSandbox:
    worker_sandbox.reset()
    return worker_sandbox


def test_retry_delays_back_off_with_jitter_below_the_visibility_timeout() -> None:
    delays = [tasks.retry_countdown(retries) for retries in range(12) for _ in range(20)]

    assert all(0 < delay <= tasks.RETRY_MAX_SECONDS for delay in delays)
    assert max(delays) < settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    assert 30 <= tasks.retry_countdown(0) <= 60
    assert len({round(tasks.retry_countdown(3), 6) for _ in range(20)}) > 1


def test_sync_tasks_are_acknowledged_late_and_time_limited() -> None:
    for task in (tasks.sync_library, tasks.deliver_outbox, tasks.dispatch_due_syncs):
        assert task.acks_late
        assert task.soft_time_limit < task.time_limit
    assert settings.CELERY_BEAT_SCHEDULE["kitsu-dispatch-due-syncs"] == {
        "task": "kitsu_sync.tasks.dispatch_due_syncs",
        "schedule": settings.KITSU_SYNC_DISPATCH_EVERY,
    }


@pytest.mark.parametrize(
    ("entry", "task", "every"),
    [
        ("kitsu-drain-outbox", tasks.drain_outbox, timedelta(minutes=1)),
        ("kitsu-retry-unmatched", tasks.retry_unmatched, timedelta(minutes=5)),
        ("kitsu-prune-scrobble-records", tasks.prune_scrobble_records, timedelta(hours=1)),
    ],
)
def test_beat_runs_the_scrobbling_chores(entry: str, task: Any, every: timedelta) -> None:
    assert task.acks_late
    assert task.soft_time_limit < task.time_limit
    assert settings.CELERY_BEAT_SCHEDULE[entry] == {"task": task.name, "schedule": every}


@pytest.mark.django_db
def test_the_drain_asks_for_a_delivery_of_each_user_with_due_changes(
    monkeypatch: pytest.MonkeyPatch, deliveries: list[Any]
) -> None:
    monkeypatch.setattr(tasks.outbox, "users_with_due_changes", lambda: [3, 5])

    assert tasks.drain_outbox() == 2
    assert deliveries == [(3,), (5,)]


def test_beat_looks_for_due_mapping_datasets_every_hour() -> None:
    task = tasks.update_mapping_datasets
    assert task.acks_late
    assert task.soft_time_limit < task.time_limit
    assert settings.CELERY_BEAT_SCHEDULE["kitsu-update-mapping-datasets"] == {
        "task": "kitsu_sync.tasks.update_mapping_datasets",
        "schedule": timedelta(hours=1),
    }


@pytest.mark.django_db
def test_the_mapping_task_downloads_what_is_due_and_records_a_failure(
    settings: Any, refused_url: str
) -> None:
    settings.MAPPING_ANIME_LISTS_URL = f"{refused_url}/anime-list-master.xml"
    settings.MAPPING_FRIBB_URL = f"{refused_url}/anime-list-full.json"

    assert tasks.update_mapping_datasets.apply().get() == 0

    failures = dict(MappingDataset.objects.values_list("source", "last_error"))
    assert set(failures) == {"anime-lists", "fribb"}
    assert all("could not be downloaded" in reason for reason in failures.values())
    # Tried just now: the next hourly look leaves them alone until MAPPING_RETRY_AFTER.
    assert tasks.update_mapping_datasets.apply().get() == 0
    assert MappingDataset.objects.filter(last_attempt_at__isnull=False).count() == 2


@pytest.mark.slow
def test_beats_dispatcher_syncs_the_due_users_only(
    transactional_db: None,
    worker: CeleryWorker,
    sandbox_for_worker: WorkerSandbox,
    linked_user: Any,
) -> None:
    now = timezone.now()
    due = linked_user("due", sandbox=sandbox_for_worker)
    KitsuSyncState.objects.create(user=due, next_sync_at=now - timedelta(minutes=1))
    later = linked_user("later", sandbox=sandbox_for_worker)
    KitsuSyncState.objects.create(user=later, next_sync_at=now + timedelta(hours=3))
    relink = linked_user("relink", sandbox=sandbox_for_worker)
    KitsuSyncState.objects.create(user=relink, next_sync_at=now - timedelta(days=2))
    KitsuToken.objects.filter(user=relink).update(needs_relink=True)

    tasks.dispatch_due_syncs.delay()

    [run] = wait_for(lambda: finished_runs(due), what="the due user's sync")
    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.trigger == "schedule"
    wait_for(lambda: worker.pending_messages() == 0, what="the queue to drain")
    assert not SyncRun.objects.filter(user__in=[later, relink]).exists()
    state = KitsuSyncState.objects.get(user=due)
    assert state.next_sync_at > now + settings.KITSU_SYNC_INTERVAL - timedelta(minutes=1)


@pytest.mark.slow
def test_two_requests_for_one_user_make_one_sync_within_the_request_budget(
    transactional_db: None,
    worker: CeleryWorker,
    sandbox_for_worker: WorkerSandbox,
    linked_user: Any,
) -> None:
    user = linked_user("twice", sandbox=sandbox_for_worker)
    entries = sandbox_for_worker.anime_entries()
    sandbox_for_worker.server.store.log.clear()

    assert request_sync(user_id=user.pk, trigger="manual")
    assert not request_sync(user_id=user.pk, trigger="manual")

    [run] = wait_for(lambda: finished_runs(user), what="the sync to finish")
    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.created == entries > 1000
    wait_for(lambda: worker.pending_messages() == 0, what="the queue to drain")
    assert SyncRun.objects.filter(user=user).count() == 1
    stats = sandbox_for_worker.stats()
    assert stats["by_route"][LIBRARY_ROUTE] <= math.ceil(entries / 500) + 1
    assert stats["total"] <= math.ceil(entries / 500) + 2
    assert LibraryEntry.objects.filter(user=user).count() == entries


@pytest.mark.slow
def test_two_sync_tasks_running_at_once_for_one_user_make_one_sync(
    transactional_db: None,
    worker: CeleryWorker,
    sandbox_for_worker: WorkerSandbox,
    linked_user: Any,
) -> None:
    user = linked_user("racing", sandbox=sandbox_for_worker)
    # Hold the first sync inside Kitsu's first library page, so that the second task
    # certainly starts while the first still holds the user's claim.
    requests.post(
        f"{sandbox_for_worker.server.base_url}/__sandbox/faults",
        json=[{"kind": "slow", "seconds": 8, "count": 1, "path": "/api/edge/library-entries"}],
        timeout=10,
    ).raise_for_status()

    tasks.sync_library.delay(user.pk, "manual", False)
    wait_for(
        lambda: KitsuSyncState.objects.filter(
            user=user, sync_claimed_until__gt=timezone.now()
        ).exists(),
        what="the first sync to claim the user",
    )
    tasks.sync_library.delay(user.pk, "manual", False)

    runs = wait_for(lambda: len(finished_runs(user)) == 2 and finished_runs(user))
    assert sorted(run.outcome for run in runs) == [SyncOutcome.SKIPPED, SyncOutcome.SUCCESS]
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.SUCCESS


@pytest.mark.slow
def test_sync_now_on_the_dashboard_completes_and_the_page_shows_the_result(
    transactional_db: None,
    worker: CeleryWorker,
    sandbox_for_worker: WorkerSandbox,
    client: Any,
    linked_user: Any,
) -> None:
    user = linked_user("dashboard", sandbox=sandbox_for_worker)
    entries = sandbox_for_worker.anime_entries()
    client.force_login(user)

    response = client.post("/kitsu/sync/")

    assert response.status_code == 302
    wait_for(
        lambda: KitsuSyncState.objects.filter(
            user=user, last_sync_status=SyncStatus.SUCCESS
        ).exists(),
        what="the sync started from the dashboard",
    )
    page = client.get("/").content.decode()
    assert 'id="last-outcome">Succeeded<' in page
    assert f'id="entries-synced">{entries}<' in page
    assert "Sync now" in page


@pytest.mark.parametrize(("retryable", "attempts"), [(True, 1 + tasks.MAX_RETRIES), (False, 1)])
def test_a_sync_is_retried_only_when_it_failed_for_a_passing_reason(
    monkeypatch: Any, retryable: bool, attempts: int
) -> None:
    calls: list[dict[str, Any]] = []

    def failed_run(**options: Any) -> SyncRun:
        calls.append(options)
        return SyncRun(
            outcome=SyncOutcome.FAILED, errors=[{"reason": "Kitsu is down", "retryable": retryable}]
        )

    monkeypatch.setattr("kitsu_sync.services.sync.run_sync", failed_run)

    tasks.sync_library.apply(args=(7, "schedule", False))

    assert len(calls) == attempts
    assert calls[0] == {"user_id": 7, "trigger": "schedule", "full": False}
