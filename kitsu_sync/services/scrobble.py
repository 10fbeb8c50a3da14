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
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from kitsu_sync.kitsu_api import KitsuError, KitsuNotFound
from kitsu_sync.media_servers import MediaIds, MediaServerError
from kitsu_sync.models import (
    ApiKey,
    IdempotentRequest,
    LibraryEntry,
    MediaOverride,
    UnmatchedItem,
    UnmatchedStatus,
    WatchReport,
)
from kitsu_sync.services import api_keys, media_servers, metadata
from kitsu_sync.services.resolve import Match, Unmatched, normalised_title, resolve
from kitsu_sync.services.watch import record_watch_progress
from kitsu_sync.webhooks import Playback

logger = logging.getLogger(__name__)

# An item left unmatched by a passing failure is tried again after this long.
RETRY_UNMATCHED_AFTER = timedelta(minutes=5)
# An answer given to an Idempotency-Key is given again to a retry for this long.
IDEMPOTENCY_KEPT = timedelta(hours=24)
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
    key = {"user_id": user_id, "site": site, "external_id": external_id, "season": watch.season}
    with transaction.atomic():
        # Created first (two reports of a new show at once: get_or_create takes the other's
        # row), then locked, so that concurrent reports each add their episode.
        UnmatchedItem.objects.get_or_create(
            **key, defaults={"first_seen": now, "last_seen": now, "reports": 0}
        )
        item = UnmatchedItem.objects.select_for_update().get(**key)
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
    try:
        watched = record_watch_progress(
            user_id=user_id, anime_kitsu_id=found.kitsu_id, episode=episode, source=watch.source
        )
    except KitsuNotFound:
        # A choice (or a mapping) naming an anime Kitsu no longer has.
        reason = f"Kitsu has no anime {found.kitsu_id} (found by {found.source})."
        item = _keep_unmatched(user_id, watch, Unmatched(reason), retry=False)
        return Scrobbled(Outcome.UNMATCHED, reason, unmatched=item)
    except KitsuError as exc:
        reason = f"Kitsu could not be asked about anime {found.kitsu_id} ({exc.message})."
        item = _keep_unmatched(user_id, watch, Unmatched(reason), retry=True)
        return Scrobbled(Outcome.UNMATCHED, reason, unmatched=item)
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
    """The choice cannot be made as asked; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoSuchUnmatched(UnmatchedError):
    """The user has no such unmatched item."""


def _item(user_id: int, item_id: int) -> UnmatchedItem:
    item = UnmatchedItem.objects.filter(pk=item_id, user_id=user_id).first()
    if item is None:
        raise NoSuchUnmatched("No such unmatched item in your list.")
    return item


def _chosen_anime(kitsu_id: int) -> None:
    """Check that Kitsu has the anime the user chose (and store it) before remembering it."""
    try:
        metadata.stored_anime(kitsu_id)
    except KitsuNotFound as exc:
        raise UnmatchedError(f"Kitsu has no anime with the id {kitsu_id}.") from exc
    except KitsuError as exc:
        raise UnmatchedError(
            f"Kitsu could not be asked about anime {kitsu_id} ({exc.message}); try again."
        ) from exc


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
        # Recorded: the episodes no longer wait (a later row of the show starts afresh).
        item.status = UnmatchedStatus.MATCHED
        item.retry_after = None
        item.episodes = []
        item.save(update_fields=["status", "retry_after", "episodes"])
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
    anime, with this episode offset. Remembered as an override; the episodes waiting (of every
    season of the show, for `every_season`) are recorded now."""
    item = _item(user_id, item_id)
    _chosen_anime(kitsu_id)
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
    waiting = [item]
    if every_season:
        waiting = list(
            UnmatchedItem.objects.filter(
                user_id=user_id,
                site=item.site,
                external_id=item.external_id,
                status=UnmatchedStatus.WAITING,
            ).order_by("season")
        )
    return [done for each in waiting for done in _replay(each)]


def ignore_unmatched(*, user_id: int, item_id: int, every_season: bool = True) -> None:
    """The user's answer: ignore this series (later events of it too)."""
    item = _item(user_id, item_id)
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


def prune_records(*, now: datetime | None = None) -> int:
    """Forget watch reports older than the repeat window and stored answers to idempotent
    requests older than IDEMPOTENCY_KEPT (beat runs this hourly). How many rows went."""
    now = now or timezone.now()
    window = settings.KITSU_SCROBBLE_REPEAT_WINDOW
    reports = WatchReport.objects.filter(reported_at__lt=now - window).delete()[0]
    answers = IdempotentRequest.objects.filter(created_at__lt=now - IDEMPOTENCY_KEPT).delete()[0]
    return reports + answers
