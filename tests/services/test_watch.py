"""Watch progress from the media server: the local entry, and when Kitsu hears about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync.models import Anime, KitsuOutbox, KitsuSyncState, LibraryEntry
from kitsu_sync.services import outbox
from kitsu_sync.services.sync import CLAIM_TTL
from kitsu_sync.services.watch import WatchedEntry, after_watching, record_watch_progress

NOW = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)
STARTED = NOW - timedelta(days=30)


def watched(**changes: Any) -> WatchedEntry:
    values: dict[str, Any] = {
        "status": "watching",
        "progress": 3,
        "rewatching": False,
        "rewatch_count": 0,
        "started_at": STARTED,
        "finished_at": None,
    }
    values.update(changes)
    return WatchedEntry(**values)


@pytest.mark.parametrize(
    ("before", "episode", "count", "after"),
    [
        # A planned show starts: watching, started now.
        (
            watched(status="plan_to_watch", progress=0, started_at=None),
            1,
            12,
            watched(progress=1, started_at=NOW),
        ),
        # The next episode moves progress on; an earlier one never moves it back.
        (watched(), 4, 12, watched(progress=4)),
        (watched(progress=7), 2, 12, watched(progress=7)),
        # The last episode completes the show.
        (watched(progress=11), 12, 12, watched(status="completed", progress=12, finished_at=NOW)),
        # An episode past the known count is the last one.
        (watched(progress=11), 15, 12, watched(status="completed", progress=12, finished_at=NOW)),
        # Dropped or paused shows resume as watching.
        (watched(status="dropped"), 4, 12, watched(progress=4)),
        # Starting a completed show again begins a rewatch at that episode.
        (
            watched(status="completed", progress=12, finished_at=STARTED),
            1,
            12,
            watched(progress=1, rewatching=True, finished_at=STARTED),
        ),
        # An earlier episode reported minutes after the finale is a late report (webhooks can
        # arrive out of order), not a rewatch.
        (
            watched(status="completed", progress=12, finished_at=NOW - timedelta(minutes=5)),
            11,
            12,
            watched(status="completed", progress=12, finished_at=NOW - timedelta(minutes=5)),
        ),
        # The finale of a completed show again changes nothing.
        (
            watched(status="completed", progress=12, finished_at=STARTED),
            12,
            12,
            watched(status="completed", progress=12, finished_at=STARTED),
        ),
        # Finishing a rewatch counts it and completes the show again.
        (
            watched(progress=11, rewatching=True, rewatch_count=1),
            12,
            12,
            watched(
                status="completed",
                progress=12,
                rewatching=False,
                rewatch_count=2,
                finished_at=NOW,
            ),
        ),
        # Unknown length: progress just grows, nothing completes.
        (watched(progress=30), 31, None, watched(progress=31)),
        (
            watched(status="completed", progress=30),
            31,
            None,
            watched(status="completed", progress=31),
        ),
    ],
)
def test_watching_an_episode_updates_the_entry(
    before: WatchedEntry, episode: int, count: int | None, after: WatchedEntry
) -> None:
    assert after_watching(before, episode=episode, episode_count=count, now=NOW) == after


def unwatched_anime(sandbox: Any) -> int:
    on_kitsu = {e.media_id for e in sandbox.store.entries_by_user[1001] if e.kind == "anime"}
    return next(
        a.id
        for a in sandbox.store.anime
        if a.id not in on_kitsu and not a.nsfw and (a.episode_count or 0) >= 3
    )


@pytest.mark.django_db
def test_a_first_episode_of_an_unknown_title_creates_the_entry_with_its_details(
    kitsu: Any, imported: Any, deliveries: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    anime_id = unwatched_anime(kitsu)
    record = kitsu.store.anime_by_id(anime_id)

    with django_capture_on_commit_callbacks(execute=True):
        watched = record_watch_progress(user_id=imported.pk, anime_kitsu_id=anime_id, episode=1)

    entry = watched.entry
    entry.refresh_from_db()
    assert (entry.status, entry.progress, entry.kitsu_entry_id) == ("watching", 1, None)
    assert entry.started_at is not None
    assert entry.local_updated_at is not None
    anime = Anime.objects.get(kitsu_id=anime_id)
    assert anime.title == record.canonical_title
    assert anime.episode_count == record.episode_count
    # Import only (the default): kept in Revenge, nothing queued for Kitsu.
    assert (watched.changed, watched.queued) == (True, False)
    assert deliveries == []
    assert not KitsuOutbox.objects.exists()


@pytest.mark.django_db
def test_watching_is_queued_for_kitsu_and_delivered_at_once_when_the_direction_sends_there(
    kitsu: Any,
    imported: Any,
    settings: Any,
    deliveries: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.KITSU_SYNC_DIRECTION = "two_way"
    entry = (
        LibraryEntry.objects.filter(
            user=imported, status="watching", anime__episode_count__gte=12, progress__lt=5
        )
        .select_related("anime")
        .first()
    )

    with django_capture_on_commit_callbacks(execute=True):
        watched = record_watch_progress(
            user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=entry.progress + 1
        )

    assert watched.queued
    assert deliveries == [(imported.pk,)]
    assert KitsuOutbox.objects.filter(entry=entry).exists()
    assert outbox.deliver(user_id=imported.pk).sent == 1
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 1
    entry.refresh_from_db()
    assert entry.synced_values["progress"] == entry.progress
    assert entry.pushed_at is not None
    # Nothing left to send: the row left the outbox with Kitsu's answer.
    assert not KitsuOutbox.objects.exists()
    assert outbox.deliver(user_id=imported.pk).sent == 0


@pytest.mark.django_db
def test_an_episode_watched_twice_changes_nothing_and_sends_nothing(
    imported: Any, settings: Any, deliveries: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    settings.KITSU_SYNC_DIRECTION = "two_way"
    entry = LibraryEntry.objects.filter(user=imported, status="watching", progress__gte=2).first()

    with django_capture_on_commit_callbacks(execute=True):
        same = record_watch_progress(
            user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=1
        )

    assert not same.changed
    assert same.entry.updated_at == entry.updated_at
    assert same.entry.local_updated_at is None
    assert deliveries == []


@pytest.mark.django_db
def test_the_same_episode_reported_again_soon_counts_once(
    imported: Any, settings: Any, deliveries: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    # A completed show: a second report of its last-but-one episode (another server, a
    # retry) must not start a rewatch.
    entry = (
        LibraryEntry.objects.filter(user=imported, status="watching", anime__episode_count__gte=3)
        .select_related("anime")
        .first()
    )
    last = entry.anime.episode_count
    first = record_watch_progress(
        user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=last - 1
    )
    record_watch_progress(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=last)

    again = record_watch_progress(
        user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=last - 1
    )

    assert first.changed
    assert again.repeated
    assert not again.changed
    entry.refresh_from_db()
    assert (entry.status, entry.rewatching) == ("completed", False)


@pytest.mark.django_db
def test_a_delivery_waits_while_a_sync_holds_the_users_claim(
    kitsu: Any, imported: Any, settings: Any
) -> None:
    settings.KITSU_SYNC_DIRECTION = "two_way"
    entry = (
        LibraryEntry.objects.filter(user=imported, status="watching")
        .select_related("anime")
        .first()
    )
    record_watch_progress(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=40)
    KitsuSyncState.objects.filter(user=imported).update(
        sync_claimed_until=timezone.now() + CLAIM_TTL
    )

    with pytest.raises(outbox.OutboxBusy):
        outbox.deliver(user_id=imported.pk)
    assert KitsuOutbox.objects.filter(entry=entry).exists()


@pytest.mark.django_db
def test_nothing_is_queued_when_syncing_only_imports(kitsu: Any, imported: Any) -> None:
    entry = LibraryEntry.objects.filter(user=imported, status="watching").first()
    record_watch_progress(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=40)

    assert outbox.deliver(user_id=imported.pk).sent == 0
    assert not KitsuOutbox.objects.exists()
    assert kitsu.stats()["total"] == 0


def test_an_episode_number_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="from 1"):
        record_watch_progress(user_id=1, anime_kitsu_id=1, episode=0)
