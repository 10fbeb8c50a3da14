"""Scrobbles taken while Redis (the broker) or Kitsu is down: the request still records the
episode, the change waits in the outbox, and a real worker delivers it later, once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from kitsu_sync import tasks
from kitsu_sync.models import KitsuOutbox, LibraryEntry, SyncOutcome, SyncTrigger
from kitsu_sync.services import api_keys
from kitsu_sync.services.sync import run_sync
from tests.celery_worker import routed_to, wait_for, worker_environment
from tests.reliability.workers import broker_at, unique_queue, worker_process

pytestmark = pytest.mark.django_db(transaction=True)

DRAINED = re.compile(r"drain_outbox\[[^\]]+\] succeeded")


def writes_to(sandbox: Any, kitsu_entry_id: int) -> list[dict[str, Any]]:
    return [
        row
        for row in sandbox.requests_log(f"/api/edge/library-entries/{kitsu_entry_id}")
        if row["method"] in ("PATCH", "PUT")
    ]


@pytest.fixture
def scrobbler(kitsu: Any, linked_user: Callable[..., Any], settings: Any) -> Any:
    """A linked user, imported once, scrobbling two-way with an API key (`user.api_key`)."""
    user = linked_user("outage")
    assert run_sync(user_id=user.pk, trigger=SyncTrigger.LINK).outcome == SyncOutcome.SUCCESS
    settings.KITSU_SYNC_DIRECTION = "two_way"
    _, user.api_key = api_keys.create_key(user=user, name="outage test")
    return user


def scrobble_next(user: Any) -> tuple[LibraryEntry, dict[str, Any]]:
    entry = (
        LibraryEntry.objects.filter(
            user=user, status="watching", anime__episode_count__gte=12, progress__lt=5
        )
        .select_related("anime")
        .order_by("kitsu_entry_id")
        .first()
    )
    response = Client().post(
        "/api/v1/scrobble",
        {"kitsu_id": entry.anime.kitsu_id, "episode": entry.progress + 1},
        content_type="application/json",
        headers={"Authorization": f"Bearer {user.api_key}"},
    )
    assert response.status_code == 200, response.content
    return entry, response.json()


def test_a_scrobble_taken_while_redis_is_down_is_delivered_once_redis_is_back(
    kitsu: Any, scrobbler: Any, private_redis: Any, worker_logs: Any, caplog: Any
) -> None:
    private_redis.stop()
    queue = unique_queue()

    with broker_at(private_redis.url), routed_to(queue):
        entry, answer = scrobble_next(scrobbler)

    # The request recorded the episode and kept the change, though nothing could be queued.
    assert (answer["outcome"], answer["delivery"]) == ("recorded", "queued for Kitsu")
    assert answer["entry"]["kitsu"]["state"] == "waiting"
    assert KitsuOutbox.objects.filter(user=scrobbler).count() == 1
    assert "Could not queue the delivery" in caplog.text
    assert writes_to(kitsu, entry.kitsu_entry_id) == []

    private_redis.start()
    environment = worker_environment(kitsu, KITSU_SYNC_DIRECTION="two_way")
    with (
        broker_at(private_redis.url),
        routed_to(queue),
        worker_process(
            log_dir=worker_logs, queue=queue, environment=environment, broker_url=private_redis.url
        ) as worker,
    ):
        # What beat does every minute.
        tasks.drain_outbox.delay()
        wait_for(
            lambda: not KitsuOutbox.objects.filter(user=scrobbler).exists(),
            timeout=60,
            what="the worker to deliver the waiting change",
        )
        # A second drain finds nothing left to send.
        tasks.drain_outbox.delay()
        wait_for(
            lambda: len(DRAINED.findall(worker.log_text())) >= 2,
            timeout=30,
            what="the second drain to run",
        )

    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 1
    assert len(writes_to(kitsu, entry.kitsu_entry_id)) == 1


def test_a_scrobble_while_kitsu_answers_503_reaches_kitsu_once_it_answers(
    kitsu: Any, scrobbler: Any, worker_logs: Any
) -> None:
    kitsu.set_faults([{"kind": "status", "status": 503, "count": None, "method": "PATCH"}])
    queue = unique_queue()
    environment = worker_environment(kitsu, KITSU_SYNC_DIRECTION="two_way")

    with (
        routed_to(queue),
        worker_process(log_dir=worker_logs, queue=queue, environment=environment) as worker,
    ):
        entry, answer = scrobble_next(scrobbler)
        assert answer["delivery"] == "queued for Kitsu"
        wait_for(
            lambda: KitsuOutbox.objects.filter(user=scrobbler, attempts__gte=1).exists(),
            timeout=60,
            what="the worker's delivery to meet the 503",
        )
        row = KitsuOutbox.objects.get(user=scrobbler)
        assert not row.failed
        assert row.last_error

        kitsu.set_faults([])
        # Due again (the backoff would wait 15-30 s), as beat's drain will find it.
        KitsuOutbox.objects.filter(pk=row.pk).update(next_attempt_at=row.queued_at)
        tasks.drain_outbox.delay()
        wait_for(
            lambda: not KitsuOutbox.objects.filter(user=scrobbler).exists(),
            timeout=60,
            what="the change to reach Kitsu",
        )
        assert worker.process.poll() is None

    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 1
    succeeded = [w for w in writes_to(kitsu, entry.kitsu_entry_id) if w["status"] == 200]
    assert len(succeeded) == 1
