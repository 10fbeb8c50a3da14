"""Watch progress reported by the media server: "user U watched episode N of anime A".

The local entry is updated at once (watching, completed, dates, a rewatch when a completed
show is started again), and when the sync direction sends Revenge's changes to Kitsu, the
change is queued in the outbox in the same transaction (services/outbox.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from kitsu_sync.mapping import RECONSUME_COUNT_MAX
from kitsu_sync.models import Anime, LibraryEntry, WatchReport, WatchStatus
from kitsu_sync.services import outbox
from kitsu_sync.services.metadata import stored_anime


@dataclass(frozen=True)
class WatchedEntry:
    """The fields of an entry that watching can change."""

    status: str
    progress: int
    rewatching: bool
    rewatch_count: int
    started_at: datetime | None
    finished_at: datetime | None


# An earlier episode reported this soon after the show was completed is a late report of the
# same watch (webhooks can arrive out of order), not the start of a rewatch.
LATE_REPORT_WINDOW = timedelta(minutes=30)


def after_watching(
    entry: WatchedEntry, *, episode: int, episode_count: int | None, now: datetime
) -> WatchedEntry:
    """The entry once episode `episode` has been watched (pure; unknown count: None or 0).

    Progress never goes backwards, except that starting a completed show again begins a
    rewatch at that episode (unless the show was completed within LATE_REPORT_WINDOW: then
    the episode is a late report of the watch that completed it). Finishing a rewatch counts
    it and completes the entry again.
    """
    count = episode_count or None
    if count is not None:
        episode = min(episode, count)
    values: dict[str, Any] = {
        "status": entry.status,
        "progress": entry.progress,
        "rewatching": entry.rewatching,
        "rewatch_count": entry.rewatch_count,
        "started_at": entry.started_at,
        "finished_at": entry.finished_at,
    }
    completed = entry.status == WatchStatus.COMPLETED and not entry.rewatching
    if completed:
        finale_again = count is not None and episode >= count
        more_episodes = count is None and episode > entry.progress
        just_finished = (
            entry.finished_at is not None and now - entry.finished_at < LATE_REPORT_WINDOW
        )
        if finale_again or (just_finished and not more_episodes):
            return entry
        if more_episodes:
            values["progress"] = episode
            return WatchedEntry(**values)
        values.update(rewatching=True, status=WatchStatus.WATCHING, progress=episode)
        return WatchedEntry(**values)

    values["progress"] = max(entry.progress, episode)
    values["status"] = WatchStatus.WATCHING
    if values["started_at"] is None:
        values["started_at"] = now
    if count is not None and values["progress"] >= count:
        values.update(status=WatchStatus.COMPLETED, progress=count, finished_at=now)
        if entry.rewatching:
            values.update(
                rewatching=False,
                rewatch_count=min(entry.rewatch_count + 1, RECONSUME_COUNT_MAX),
            )
    return WatchedEntry(**values)


def _locked_entry(user_id: int, anime: Anime) -> LibraryEntry:
    """The user's entry for the anime, locked (made first when the list has none)."""
    rows = LibraryEntry.objects.select_for_update()
    entry = rows.filter(user_id=user_id, anime=anime).first()
    if entry is None:
        try:
            with transaction.atomic():
                LibraryEntry.objects.create(
                    user_id=user_id, anime=anime, status=WatchStatus.PLAN_TO_WATCH, progress=0
                )
        except IntegrityError:
            pass  # made by a report of the same anime at the same moment
        entry = rows.get(user_id=user_id, anime=anime)
    entry.anime = anime  # known already: the answer reads its title without a query
    return entry


@dataclass(frozen=True)
class Watched:
    """What recording a watched episode did."""

    entry: LibraryEntry
    changed: bool  # the entry moved (progress, status, a rewatch)
    repeated: bool  # the same episode was reported moments ago: counted once, not again
    queued: bool  # the change waits in the outbox for Kitsu


def record_watch_progress(
    *,
    user_id: int,
    anime_kitsu_id: int,
    episode: int,
    source: str = "api",
    once_in_window: bool = True,
) -> Watched:
    """Record that the user watched `episode` (1-based) of the anime.

    The same episode reported again within KITSU_SCROBBLE_REPEAT_WINDOW (a stop and a
    mark-played, a server's retry, a second server) counts once. A change is queued for
    Kitsu in the same transaction when the direction sends changes there. Raises ValueError
    for an episode below 1, and a KitsuError when the anime is unknown here and Kitsu cannot
    be asked about it. `once_in_window=False` (a person's own +1, which names the episode after
    the progress they see) skips that check: progress never going back keeps a double click
    from counting twice.
    """
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 1:
        raise ValueError(f"An episode number is a whole number from 1, not {episode!r}.")
    anime = stored_anime(anime_kitsu_id)
    now = timezone.now()
    with transaction.atomic():
        # The entry's lock orders reports of the same entry: the second sees the first.
        entry = _locked_entry(user_id, anime)
        repeated = (
            once_in_window
            and WatchReport.objects.filter(
                user_id=user_id,
                anime=anime,
                episode=episode,
                reported_at__gt=now - settings.KITSU_SCROBBLE_REPEAT_WINDOW,
            ).exists()
        )
        if repeated:
            return Watched(entry, changed=False, repeated=True, queued=False)
        WatchReport.objects.create(
            user_id=user_id, anime=anime, episode=episode, source=source, reported_at=now
        )
        before = WatchedEntry(
            status=entry.status,
            progress=entry.progress,
            rewatching=entry.rewatching,
            rewatch_count=entry.rewatch_count,
            started_at=entry.started_at,
            finished_at=entry.finished_at,
        )
        after = after_watching(before, episode=episode, episode_count=anime.episode_count, now=now)
        if after == before:
            return Watched(entry, changed=False, repeated=False, queued=False)
        for name, value in vars(after).items():
            setattr(entry, name, value)
        if (after.status, after.progress) != (before.status, before.progress):
            entry.progressed_at = now
        entry.local_updated_at = now
        entry.save()
        queued = outbox.sends_to_kitsu(user_id)
        if queued:
            outbox.queue_write(entry)
    return Watched(entry, changed=True, repeated=False, queued=queued)
