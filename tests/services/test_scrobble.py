"""Scrobbling: a watched episode named by the media server's ids, resolved to a Kitsu anime and
episode and recorded; what resolves to nothing is kept for the user to match or ignore."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync.media_servers import MediaIds
from kitsu_sync.models import (
    IdempotentRequest,
    LibraryEntry,
    MediaOverride,
    MediaServer,
    MediaServerKind,
    UnmatchedItem,
    UnmatchedStatus,
    WatchReport,
)
from kitsu_sync.services import api_keys
from kitsu_sync.services.scrobble import (
    IDEMPOTENCY_KEPT,
    Outcome,
    Scrobbled,
    UnmatchedError,
    Watch,
    ignore_unmatched,
    match_unmatched,
    prune_records,
    retry_due_unmatched,
    scrobble,
    scrobble_webhook,
)
from kitsu_sync.webhooks import Playback
from tests import fake_media_server

pytestmark = pytest.mark.django_db

UNKNOWN_SERIES = 999_001  # a TheTVDB series no dataset knows


@pytest.fixture
def viewer(make_user: Callable[..., Any]) -> Any:
    return make_user("scrobbler")


def watch(user: Any, episode: int, *, season: int | None = 1, **ids: Any) -> Scrobbled:
    title = ids.pop("title", "")
    return scrobble(
        user_id=user.pk,
        watch=Watch(MediaIds(**ids), episode, season, title, "jellyfin", {"show": title}),
    )


def entry_of(user: Any, kitsu_id: int) -> LibraryEntry:
    return LibraryEntry.objects.get(user=user, anime__kitsu_id=kitsu_id)


def test_a_thetvdb_series_season_and_episode_move_the_kitsu_entry(
    datasets: None, viewer: Any
) -> None:
    done = watch(viewer, 5, tvdb=76885)

    assert (done.outcome, done.kitsu_id, done.episode) == (Outcome.RECORDED, 1, 5)
    assert done.how, "the answer says how the show was found"
    entry = entry_of(viewer, 1)
    assert (entry.status, entry.progress) == ("watching", 5)
    assert done.entry.pk == entry.pk


def test_a_special_in_season_zero_moves_the_special_anime(datasets: None, viewer: Any) -> None:
    done = watch(viewer, 1, season=0, tvdb=72025)

    assert (done.outcome, done.kitsu_id, done.episode) == (Outcome.RECORDED, 266, 1)
    # The special is one episode long: watching it completes it.
    assert entry_of(viewer, 266).status == "completed"
    assert not LibraryEntry.objects.filter(user=viewer, anime__kitsu_id=265).exists()


def test_an_absolute_episode_number_finds_its_season_on_kitsu(datasets: None, viewer: Any) -> None:
    done = watch(viewer, 15, season=None, tvdb=83692)

    assert (done.kitsu_id, done.episode) == (197, 15)
    assert entry_of(viewer, 197).progress == 15


def test_a_season_kitsu_splits_in_two_cours_moves_the_second_cour(
    datasets: None, viewer: Any
) -> None:
    first_cour = watch(viewer, 12, season=3, tvdb=267440)
    second_cour = watch(viewer, 13, season=3, tvdb=267440)

    assert (first_cour.kitsu_id, first_cour.episode) == (13569, 12)
    assert (second_cour.kitsu_id, second_cour.episode) == (41982, 1)
    assert entry_of(viewer, 13569).status == "completed"
    assert entry_of(viewer, 41982).progress == 1


def test_an_episode_beyond_kitsus_count_is_capped_at_the_last(datasets: None, viewer: Any) -> None:
    done = watch(viewer, 30, season=None, kitsu=1)

    assert (done.outcome, done.episode) == (Outcome.RECORDED, 26)
    assert "counted as 26" in done.how[-1]
    entry = entry_of(viewer, 1)
    assert (entry.status, entry.progress) == ("completed", 26)


def test_the_same_episode_reported_twice_counts_once(datasets: None, viewer: Any) -> None:
    first = watch(viewer, 5, tvdb=76885)
    second = watch(viewer, 5, tvdb=76885)

    assert (first.outcome, second.outcome) == (Outcome.RECORDED, Outcome.REPEATED)
    assert entry_of(viewer, 1).progress == 5


def test_an_earlier_episode_never_moves_progress_back(datasets: None, viewer: Any) -> None:
    watch(viewer, 8, tvdb=76885)

    done = watch(viewer, 3, tvdb=76885)

    assert done.outcome == Outcome.UNCHANGED
    assert "already counted" in done.reason
    assert entry_of(viewer, 1).progress == 8


def test_a_show_nothing_resolves_is_kept_with_what_the_server_sent(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    first = watch(viewer, 3, tvdb=UNKNOWN_SERIES, title="Obscure Show")
    second = watch(viewer, 4, tvdb=UNKNOWN_SERIES, title="Obscure Show")

    assert (first.outcome, second.outcome) == (Outcome.UNMATCHED, Outcome.UNMATCHED)
    [item] = UnmatchedItem.objects.filter(user=viewer)
    assert (item.site, item.external_id, item.season) == ("tvdb", str(UNKNOWN_SERIES), 1)
    assert item.title == "Obscure Show"
    assert [w["episode"] for w in item.episodes] == [3, 4]
    assert item.reports == 2
    assert item.status == UnmatchedStatus.WAITING
    assert item.details["ids"] == {"tvdb": str(UNKNOWN_SERIES)}
    assert item.reason == first.reason
    assert not LibraryEntry.objects.filter(user=viewer).exists()


def test_matching_an_unmatched_show_records_the_waiting_episodes_and_later_ones(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    watch(viewer, 3, tvdb=UNKNOWN_SERIES)
    watch(viewer, 4, tvdb=UNKNOWN_SERIES)
    item = UnmatchedItem.objects.get(user=viewer)

    replayed = match_unmatched(user_id=viewer.pk, item_id=item.pk, kitsu_id=1)

    assert [(r.outcome, r.kitsu_id, r.episode) for r in replayed] == [
        (Outcome.RECORDED, 1, 3),
        (Outcome.RECORDED, 1, 4),
    ]
    assert entry_of(viewer, 1).progress == 4
    item.refresh_from_db()
    assert item.status == UnmatchedStatus.MATCHED
    override = MediaOverride.objects.get(user=viewer)
    assert (override.site, override.external_id, override.season) == (
        "tvdb",
        str(UNKNOWN_SERIES),
        1,
    )
    # Later events of that series and season follow the choice...
    assert watch(viewer, 5, tvdb=UNKNOWN_SERIES).kitsu_id == 1
    # ...but another season of it is its own question.
    assert watch(viewer, 1, season=2, tvdb=UNKNOWN_SERIES).outcome == Outcome.UNMATCHED


def test_a_match_for_every_season_with_an_offset_places_later_seasons(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    watch(viewer, 1, season=2, tvdb=UNKNOWN_SERIES)
    item = UnmatchedItem.objects.get(user=viewer)

    [done] = match_unmatched(
        user_id=viewer.pk, item_id=item.pk, kitsu_id=1, episode_offset=12, every_season=True
    )

    assert (done.kitsu_id, done.episode) == (1, 13)
    assert MediaOverride.objects.get(user=viewer).season is None
    assert watch(viewer, 2, season=5, tvdb=UNKNOWN_SERIES).episode == 14


def test_ignoring_a_series_ignores_its_later_events(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    watch(viewer, 1, tvdb=UNKNOWN_SERIES)
    item = UnmatchedItem.objects.get(user=viewer)

    ignore_unmatched(user_id=viewer.pk, item_id=item.pk)

    item.refresh_from_db()
    assert item.status == UnmatchedStatus.IGNORED
    later = watch(viewer, 2, season=3, tvdb=UNKNOWN_SERIES)
    assert later.outcome == Outcome.IGNORED
    assert "your choice" in later.reason
    assert UnmatchedItem.objects.filter(user=viewer).count() == 1


def test_another_users_unmatched_item_cannot_be_matched_or_ignored(
    datasets: None, kitsu: Any, viewer: Any, make_user: Callable[..., Any]
) -> None:
    watch(viewer, 1, tvdb=UNKNOWN_SERIES)
    item = UnmatchedItem.objects.get(user=viewer)
    other = make_user("other")

    with pytest.raises(UnmatchedError):
        match_unmatched(user_id=other.pk, item_id=item.pk, kitsu_id=1)
    with pytest.raises(UnmatchedError):
        ignore_unmatched(user_id=other.pk, item_id=item.pk)
    assert not MediaOverride.objects.exists()


def test_a_show_kitsu_could_not_be_asked_about_is_tried_again_by_itself(
    kitsu: Any, kitsu_at: Callable[..., Any], refused_url: str, viewer: Any
) -> None:
    mapping = next(
        m
        for m in kitsu.store.all_mappings()
        if m.external_site == "myanimelist/anime" and (m.anime.episode_count or 0) >= 3
    )
    kitsu_at(api_url=refused_url, oauth_url=refused_url)

    down = watch(viewer, 2, season=None, mal=int(mapping.external_id))

    assert down.outcome == Outcome.UNMATCHED
    assert "could not be asked" in down.reason
    item = UnmatchedItem.objects.get(user=viewer)
    assert item.retry_after is not None
    assert retry_due_unmatched() == 0  # not due yet

    kitsu_at(kitsu)
    UnmatchedItem.objects.filter(pk=item.pk).update(retry_after=timezone.now() - timedelta(1))
    assert retry_due_unmatched() == 1

    item.refresh_from_db()
    assert (item.status, item.retry_after) == (UnmatchedStatus.MATCHED, None)
    assert entry_of(viewer, mapping.anime.id).progress == 2


# --- webhooks, read ------------------------------------------------------------------------------


def playback(**fields: Any) -> Playback:
    values: dict[str, Any] = {
        "source": "plex",
        "event": "media.scrobble",
        "counts": True,
        "why": "Plex scrobbled it",
        "kind": "episode",
        "user_name": "alice",
        "show_ids": MediaIds(tvdb=76885),
        "season": 1,
        "episode": 6,
        "show_title": "Cowboy Bebop",
    }
    values.update(fields)
    return Playback(**values)


def test_a_webhook_for_a_server_user_the_key_does_not_act_for_is_ignored(
    datasets: None, viewer: Any
) -> None:
    key, _ = api_keys.create_key(user=viewer, name="Plex", server_users=["alice"])

    mine = scrobble_webhook(key=key, playback=playback(user_name="Alice"))
    theirs = scrobble_webhook(key=key, playback=playback(user_name="bob", episode=7))

    assert mine.outcome == Outcome.RECORDED
    assert theirs.outcome == Outcome.IGNORED
    assert "'bob'" in theirs.reason
    assert entry_of(viewer, 1).progress == 6


def test_a_webhook_that_is_not_a_finished_watch_is_ignored_with_its_reason(
    datasets: None, viewer: Any
) -> None:
    key, _ = api_keys.create_key(user=viewer, name="Plex")

    done = scrobble_webhook(
        key=key, playback=playback(event="media.pause", counts=False, why="media.pause: ignored")
    )

    assert (done.outcome, done.reason) == (Outcome.IGNORED, "media.pause: ignored")
    assert not LibraryEntry.objects.filter(user=viewer).exists()


def test_a_film_is_found_by_its_own_ids(datasets: None, viewer: Any) -> None:
    key, _ = api_keys.create_key(user=viewer, name="Plex")

    done = scrobble_webhook(
        key=key,
        playback=playback(
            kind="movie",
            show_ids=MediaIds(),
            item_ids=MediaIds(imdb="tt0119698"),
            season=None,
            episode=None,
            title="Princess Mononoke",
        ),
    )

    assert (done.outcome, done.kitsu_id) == (Outcome.RECORDED, 142)
    assert entry_of(viewer, 142).status == "completed"


def test_a_choice_of_an_anime_kitsu_does_not_have_is_refused_and_not_remembered(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    watch(viewer, 1, tvdb=UNKNOWN_SERIES)
    item = UnmatchedItem.objects.get(user=viewer)

    with pytest.raises(UnmatchedError, match="Kitsu has no anime with the id 99999999"):
        match_unmatched(user_id=viewer.pk, item_id=item.pk, kitsu_id=99_999_999)

    assert not MediaOverride.objects.exists()
    item.refresh_from_db()
    assert item.status == UnmatchedStatus.WAITING


def test_a_remembered_choice_of_an_anime_gone_from_kitsu_keeps_the_episode_waiting(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    MediaOverride.objects.create(
        user=viewer, site="tvdb", external_id=str(UNKNOWN_SERIES), kitsu_id=99_999_999
    )

    done = watch(viewer, 4, tvdb=UNKNOWN_SERIES)

    assert done.outcome == Outcome.UNMATCHED
    assert "Kitsu has no anime 99999999" in done.reason
    assert [w["episode"] for w in UnmatchedItem.objects.get(user=viewer).episodes] == [4]


def test_matching_every_season_replays_the_waiting_episodes_of_each_season(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    watch(viewer, 2, season=1, tvdb=UNKNOWN_SERIES)
    watch(viewer, 3, season=2, tvdb=UNKNOWN_SERIES)
    first = UnmatchedItem.objects.get(user=viewer, season=1)

    replayed = match_unmatched(user_id=viewer.pk, item_id=first.pk, kitsu_id=1, every_season=True)

    assert [(r.outcome, r.episode) for r in replayed] == [
        (Outcome.RECORDED, 2),
        (Outcome.RECORDED, 3),
    ]
    assert set(UnmatchedItem.objects.values_list("status", flat=True)) == {"matched"}


def test_a_choice_made_for_a_title_still_holds_once_the_shows_ids_are_known(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    # The media server could not be asked: the show came by its title alone.
    watch(viewer, 1, title="Mystery Show")
    item = UnmatchedItem.objects.get(user=viewer)
    assert item.site == "title"
    match_unmatched(user_id=viewer.pk, item_id=item.pk, kitsu_id=1)

    later = watch(viewer, 2, tvdb=UNKNOWN_SERIES, title="Mystery Show")

    assert (later.outcome, later.kitsu_id) == (Outcome.RECORDED, 1)


def test_a_special_is_never_matched_by_its_shows_title(kitsu: Any, viewer: Any) -> None:
    record = next(a for a in kitsu.store.anime if not a.nsfw and a.canonical_title)

    done = watch(viewer, 1, season=0, title=record.canonical_title)

    assert done.outcome == Outcome.UNMATCHED
    assert "season 0" in done.reason
    assert not LibraryEntry.objects.filter(user=viewer).exists()


def test_old_watch_reports_and_idempotent_answers_are_pruned(
    datasets: None, viewer: Any, settings: Any
) -> None:
    watch(viewer, 1, kitsu=1)
    IdempotentRequest.objects.create(user=viewer, key="k", status=200, body={})
    later = timezone.now() + settings.KITSU_SCROBBLE_REPEAT_WINDOW + timedelta(seconds=1)

    assert prune_records(now=later) == 1
    assert not WatchReport.objects.exists()
    assert prune_records(now=later + IDEMPOTENCY_KEPT) == 1
    assert not IdempotentRequest.objects.exists()


def test_a_shows_ids_are_asked_of_the_media_server_once(datasets: None, viewer: Any) -> None:
    key, _ = api_keys.create_key(user=viewer, name="Jellyfin")
    series = "4e3cbd9f2c2e4f0cb6f9c1f9c5a5d6e7"
    with fake_media_server.serving("jellyfin") as server:
        server.items[series] = fake_media_server.jellyfin_series(series, Tvdb="76885")
        MediaServer.objects.create(
            user=viewer,
            kind=MediaServerKind.JELLYFIN,
            name="Home",
            url=server.url,
            api_key=fake_media_server.API_KEY,
        )
        for episode in (1, 2, 3):
            done = scrobble_webhook(
                key=key,
                playback=playback(
                    source="jellyfin", show_ids=MediaIds(), series_key=series, episode=episode
                ),
            )
            assert (done.outcome, done.kitsu_id, done.episode) == (Outcome.RECORDED, 1, episode)
        asked = len(server.requests)
        # A server added or changed may know the show otherwise: it is asked again.
        MediaServer.objects.filter(user=viewer).get().save()
        scrobble_webhook(
            key=key,
            playback=playback(source="jellyfin", show_ids=MediaIds(), series_key=series, episode=4),
        )

    assert asked == 1
    assert len(server.requests) == 2


def test_a_show_known_only_by_a_long_title_can_be_matched(
    datasets: None, kitsu: Any, viewer: Any
) -> None:
    title = "An Exceedingly Long Light Novel Title That Goes On: And On, Season of Titles"
    watch(viewer, 1, title=title)
    item = UnmatchedItem.objects.get(user=viewer)

    [done] = match_unmatched(user_id=viewer.pk, item_id=item.pk, kitsu_id=1)

    assert done.outcome == Outcome.RECORDED
    assert MediaOverride.objects.get(user=viewer).external_id == item.external_id
