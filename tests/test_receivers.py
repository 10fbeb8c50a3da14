"""What the signal receivers ask of Celery when a service signals that work is waiting."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from kitsu_sync.models import KitsuOutbox
from kitsu_sync.receivers import DELIVERY_GATHER_SECONDS
from kitsu_sync.signals import outbox_ready


def test_changes_of_one_user_arriving_together_share_one_delivery(
    deliveries: list[Any],
) -> None:
    for _ in range(5):
        outbox_ready.send(sender=KitsuOutbox, user_id=7)
    outbox_ready.send(sender=KitsuOutbox, user_id=8)

    assert deliveries == [(7,), (8,)]


def test_the_delivery_runs_once_the_gathering_is_over(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "kitsu_sync.tasks.deliver_outbox.apply_async",
        lambda args, **options: asked.append({"args": args, **options}),
    )

    outbox_ready.send(sender=KitsuOutbox, user_id=7)

    # It runs after the mark expires: a change that found the mark set is committed by then.
    assert asked == [{"args": (7,), "countdown": DELIVERY_GATHER_SECONDS}]
    cache.delete("kitsu-delivery-queued:7")  # the mark expired
    outbox_ready.send(sender=KitsuOutbox, user_id=7)
    assert len(asked) == 2


def test_a_broker_that_is_down_leaves_the_change_to_beat(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def down(*args: Any, **options: Any) -> None:
        raise ConnectionError("Redis is down")

    monkeypatch.setattr("kitsu_sync.tasks.deliver_outbox.apply_async", down)

    outbox_ready.send(sender=KitsuOutbox, user_id=7)

    assert "Could not queue the delivery of user 7's changes" in caplog.text
