"""Scrobbling: "this user watched episode N of this show", from the API or a media server's
webhook, resolved to a Kitsu anime and episode and recorded (docs/scrobbling.md).

An item no source resolves is kept per user (`UnmatchedItem`) with what the server sent,
until the user matches it to a Kitsu anime or ignores the series: the choice becomes an
override remembered for later events of that series and season, and the episodes waiting are
replayed. When resolving needed Kitsu or the media server and they could not answer, the item
is tried again by itself a little later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from kitsu_sync.kitsu_api import KitsuError
from kitsu_sync.media_servers import MediaIds, MediaServerError
from kitsu_sync.models import (
    ApiKey,
    LibraryEntry,
    MediaOverride,
    UnmatchedItem,
    UnmatchedStatus,
)
from kitsu_sync.services import api_keys, media_servers
from kitsu_sync.services.resolve import Match, Unmatched, normalised_title, resolve
from kitsu_sync.services.watch import record_watch_progress
from kitsu_sync.webhooks import Playback

logger = logging.getLogger(__name__)

# An item left unmatched by a passing failure is tried again after this long.
RETRY_UNMATCHED_AFTER = timedelta(minutes=5)
# The id a show is remembered by, best first (the override a match creates uses it).
SHOW_KEYS = ("tvdb", "tmdb_tv", "anidb", "mal", "anilist", "kitsu", "tmdb_movie", "imdb")


class Outcome:
    RECORDED = "recorded"  # the entry moved
    REPEATED = "repeated"  # the same episode was reported moments ago: counted once
    UNCHANGED = "unchanged"  # nothing to change (an episode already counted)
    IGNORED = "ignored"  # not a finished watch, not this key's user, an ignored series...
    UNMATCHED = "unmatched"  # kept for the user to match


@dataclass(frozen=True)
class Scrobbled:
    outcome: str
    reason: str
    kitsu_id: int | None = None
    episode: int | None = None
    entry: LibraryEntry | None = None
    queued: bool = False  # the change waits in the outbox for Kitsu
    how: tuple[str, ...] = ()
    unmatched: UnmatchedItem | None = None
    candidates: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class Watch:
    """What a scrobble says: the show (its ids, else its title), the season and episode."""

    ids: MediaIds
    episode: int
    season: int | None = None
    title: str = ""
    source: str = "api"
    # What the server sent, kept with an unmatched item for the person deciding.
    details: dict[str, Any] = field(default_factory=dict)


def _show_key(watch: Watch) -> tuple[str, str]:
    known = watch.ids.known()
    for site in SHOW_KEYS:
        if site in known:
            return site, known[site]
    return "title", normalised_title(watch.title)[:200] or "untitled"


def _keep_unmatched(user_id: int, watch: Watch, found: Unmatched, *, retry: bool) -> UnmatchedItem:
    """Remember the show as unmatched, with this episode waiting (a row per show and season)."""
    site, external_id = _show_key(watch)
    now = timezone.now()
    candidates = [
        {"kitsu_id": c.kitsu_id, "episode": c.episode, "source": c.source} for c in found.candidates
    ]
    with transaction.atomic():
        item = (
            UnmatchedItem.objects.select_for_update()
            .filter(user_id=user_id, site=site, external_id=external_id, season=watch.season)
            .first()
        )
        if item is None:
            item = UnmatchedItem(
                user_id=user_id,
                site=site,
                external_id=external_id,
                season=watch.season,
                first_seen=now,
                reports=0,
            )
        item.source = watch.source
        item.title = watch.title[:500]
        item.details = {**watch.details, "ids": watch.ids.known()}
        item.reason = found.reason
        item.candidates = candidates
        item.status = UnmatchedStatus.WAITING
        item.retry_after = now + RETRY_UNMATCHED_AFTER if retry else None
        item.last_seen = now
        item.reports += 1
        if all(waiting["episode"] != watch.episode for waiting in item.episodes):
            item.episodes = [*item.episodes, {"episode": watch.episode, "at": now.isoformat()}]
        item.save()
    return item


def _record(user_id: int, watch: Watch, found: Match) -> Scrobbled:
    episode = found.episode or watch.episode
    watched = record_watch_progress(
        user_id=user_id, anime_kitsu_id=found.kitsu_id, episode=episode, source=watch.source
    )
    if watched.repeated:
        outcome, reason = Outcome.REPEATED, "the same episode was reported moments ago"
    elif watched.changed:
        outcome, reason = Outcome.RECORDED, f"watched episode {episode}"
    else:
        outcome, reason = Outcome.UNCHANGED, f"episode {episode} was already counted"
    return Scrobbled(
        outcome,
        reason,
        kitsu_id=found.kitsu_id,
        episode=episode,
        entry=watched.entry,
        queued=watched.queued,
        how=found.how,
    )


def scrobble(*, user_id: int, watch: Watch) -> Scrobbled:
    """Resolve and record one watched episode for the user."""
    if watch.episode < 1:
        return Scrobbled(Outcome.IGNORED, f"episode {watch.episode} is not an episode")
    try:
        found = resolve(
            watch.ids,
            season=watch.season,
            episode=watch.episode,
            title=watch.title,
            user_id=user_id,
        )
    except KitsuError as exc:
        # Kitsu could not be asked now: keep it, and try again shortly by itself.
        reason = f"Kitsu could not be asked which anime this is ({exc.message})."
        item = _keep_unmatched(user_id, watch, Unmatched(reason), retry=True)
        return Scrobbled(Outcome.UNMATCHED, reason, unmatched=item)
    if isinstance(found, Match):
        return _record(user_id, watch, found)
    if found.ignored:
        return Scrobbled(Outcome.IGNORED, found.reason)
    item = _keep_unmatched(user_id, watch, found, retry=False)
    candidates = tuple(item.candidates)
    return Scrobbled(Outcome.UNMATCHED, found.reason, unmatched=item, candidates=candidates)


def _server_show_ids(user_id: int, details: dict[str, Any]) -> MediaIds:
    """Ask the media server that sent the item for its show's ids (raises MediaServerError)."""
    return media_servers.show_ids(
        user_id=user_id,
        kind=details["source"],
        series_key=details["series_key"],
        user_key=details.get("user_key", ""),
    )


def scrobble_webhook(*, key: ApiKey, playback: Playback) -> Scrobbled:
    """A media server's webhook, read: recorded when it is a finished watch of this key's user."""
    if not playback.counts:
        return Scrobbled(Outcome.IGNORED, playback.why)
    if not api_keys.acts_for(key, playback.user_name):
        return Scrobbled(
            Outcome.IGNORED,
            f"the server's user {playback.user_name!r} is not one this key acts for",
        )
    movie = playback.kind == "movie"
    details = {
        **playback.described(),
        "series_key": playback.series_key,
        "user_key": playback.user_key,
    }
    watch = Watch(
        ids=playback.item_ids if movie else playback.show_ids,
        episode=1 if movie else playback.episode or 0,
        season=None if movie or playback.absolute else playback.season,
        title=playback.title if movie else playback.show_title,
        source=playback.source,
        details=details,
    )
    return _scrobble_asking_the_server(key.user_id, watch)


def _scrobble_asking_the_server(user_id: int, watch: Watch) -> Scrobbled:
    """`scrobble`, the show's ids first asked of the media server when the item carried only
    its own (an episode's ids are not its show's)."""
    if watch.ids or not watch.details.get("series_key"):
        return scrobble(user_id=user_id, watch=watch)
    try:
        ids = _server_show_ids(user_id, watch.details)
    except media_servers.NoMediaServer as exc:
        logger.info("No %s server to ask for a show's ids: %s", watch.source, exc.message)
        return scrobble(user_id=user_id, watch=watch)  # the title is all there is
    except MediaServerError as exc:
        reason = f"The media server could not be asked which show this is ({exc.message})."
        item = _keep_unmatched(user_id, watch, Unmatched(reason), retry=True)
        return Scrobbled(Outcome.UNMATCHED, reason, unmatched=item)
    return scrobble(user_id=user_id, watch=replace(watch, ids=ids))


# --- the user's decisions on unmatched items ----------------------------------------------------


class UnmatchedError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _replay(item: UnmatchedItem) -> list[Scrobbled]:
    """The episodes waiting on an item, scrobbled again (after a choice, or a retry)."""
    details = item.details or {}
    ids = MediaIds(**{k: (v if k == "imdb" else int(v)) for k, v in details.get("ids", {}).items()})
    waiting = sorted({int(w["episode"]) for w in item.episodes})
    results = [
        _scrobble_asking_the_server(
            item.user_id, Watch(ids, episode, item.season, item.title, item.source, details)
        )
        for episode in waiting
    ]
    if results and all(r.outcome != Outcome.UNMATCHED for r in results):
        item.status = UnmatchedStatus.MATCHED
        item.retry_after = None
        item.save(update_fields=["status", "retry_after"])
    return results


def match_unmatched(
    *,
    user_id: int,
    item_id: int,
    kitsu_id: int,
    episode_offset: int = 0,
    every_season: bool = False,
) -> list[Scrobbled]:
    """The user's answer: this show (this season of it, unless `every_season`) is that Kitsu
    anime, with this episode offset. Remembered as an override; the episodes waiting are
    recorded now."""
    item = UnmatchedItem.objects.filter(pk=item_id, user_id=user_id).first()
    if item is None:
        raise UnmatchedError("No such unmatched item in your list.")
    season = None if every_season else item.season
    try:
        with transaction.atomic():
            MediaOverride.objects.update_or_create(
                user_id=user_id,
                site=item.site,
                external_id=item.external_id,
                season=season,
                defaults={"kitsu_id": kitsu_id, "episode_offset": episode_offset, "ignore": False},
            )
    except IntegrityError as exc:
        raise UnmatchedError("That choice could not be saved; try again.") from exc
    return _replay(item)


def ignore_unmatched(*, user_id: int, item_id: int, every_season: bool = True) -> None:
    """The user's answer: ignore this series (later events of it too)."""
    item = UnmatchedItem.objects.filter(pk=item_id, user_id=user_id).first()
    if item is None:
        raise UnmatchedError("No such unmatched item in your list.")
    MediaOverride.objects.update_or_create(
        user_id=user_id,
        site=item.site,
        external_id=item.external_id,
        season=None if every_season else item.season,
        defaults={"ignore": True, "kitsu_id": None, "episode_offset": 0},
    )
    item.status = UnmatchedStatus.IGNORED
    item.retry_after = None
    item.save(update_fields=["status", "retry_after"])


def retry_due_unmatched() -> int:
    """Items a passing failure left unmatched, tried again (beat runs this). How many."""
    now = timezone.now()
    due = list(
        UnmatchedItem.objects.filter(status=UnmatchedStatus.WAITING, retry_after__lte=now)[:100]
    )
    for item in due:
        _replay(item)
    return len(due)
