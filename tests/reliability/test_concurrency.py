"""Two worker processes handed a sync of the same user at the same moment: one syncs, the
other skips (the per-user claim is a compare-and-swap in PostgreSQL, shared by every process).

Covered elsewhere and not repeated here: two threads of one worker (tests/test_tasks.py::
test_two_sync_tasks_running_at_once_for_one_user_make_one_sync) and three processes refreshing
the same token at once (tests/services/test_tokens.py::
test_processes_refreshing_the_same_user_at_once_send_one_refresh_request).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from kitsu_sync import tasks
from kitsu_sync.models import KitsuSyncState, SyncOutcome, SyncStatus
from kitsu_sync.services.sync import CURSOR_OVERLAP
from tests.celery_worker import routed_to, wait_for, worker_environment
from tests.reliability.checks import assert_in_step_with_kitsu
from tests.reliability.workers import unique_queue, worker_process
from tests.sync_support import finished_runs, visible_anime_entries

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LIBRARY_ROUTE = "GET /api/edge/library-entries"


def test_two_worker_processes_syncing_one_user_at_once_make_one_sync(
    sandbox_factory: Any, linked_user: Any, worker_logs: Any, partly_imported: Any
) -> None:
    sandbox = sandbox_factory(users=1, entries=1100)
    user = linked_user("contested", sandbox=sandbox)
    baseline = partly_imported(user, sandbox)
    # The sync resumes after the stored page (its cursor, less the overlap).
    since = KitsuSyncState.objects.get(user=user).cursor_updated_at - CURSOR_OVERLAP
    unread = [
        entry
        for entry in visible_anime_entries(sandbox)
        if entry.updated_at >= since.timestamp() * 1000
    ]
    pages = math.ceil(len(unread) / 500)
    # Slow pages keep the first sync inside its claim while the second one starts.
    sandbox.set_latency(500)
    sandbox.reset(data=False, tokens=False, latency=False)
    queue = unique_queue()
    environment = worker_environment(sandbox)

    def new_runs() -> list[Any]:
        return [run for run in finished_runs(user) if run.pk not in baseline.runs]

    with (
        worker_process(
            log_dir=worker_logs, queue=queue, environment=environment, concurrency=1
        ) as first,
        worker_process(
            log_dir=worker_logs, queue=queue, environment=environment, concurrency=1
        ) as second,
        routed_to(queue),
    ):
        tasks.sync_library.delay(user.pk, "manual", False)
        tasks.sync_library.delay(user.pk, "manual", False)
        runs = wait_for(
            lambda: len(new_runs()) == 2 and new_runs(),
            timeout=60,
            what="both tasks to finish",
        )

    for worker in (first, second):
        received = [
            line
            for line in worker.log_text().splitlines()
            if "kitsu_sync.tasks.sync_library[" in line and line.endswith("received")
        ]
        assert len(received) == 1, "each process took one of the two tasks"
    assert sorted(run.outcome for run in runs) == [SyncOutcome.SKIPPED, SyncOutcome.SUCCESS]
    assert sandbox.stats()["by_route"][LIBRARY_ROUTE] == pages, "one pass over the library"
    assert KitsuSyncState.objects.get(user=user).last_sync_status == SyncStatus.SUCCESS
    sandbox.set_latency(0)
    assert_in_step_with_kitsu(user, sandbox)
    baseline.assert_intact()
