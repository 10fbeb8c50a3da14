"""Which Kitsu anime and episode a media server's item is: each case of docs/resolve.md,
with the datasets loaded from small files, Kitsu's /mappings from the sandbox over HTTP,
and a media server stand-in over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kitsu_sync.media_servers import MediaIds, parse_plex_guid
from kitsu_sync.models import MediaOverride, MediaServer, MediaServerKind
from kitsu_sync.services import media_servers
from kitsu_sync.services.resolve import Confidence, Match, Unmatched, resolve
from tests import fake_media_server

pytestmark = pytest.mark.django_db


def matched(found: Any) -> tuple[int, int | None]:
    assert isinstance(found, Match), found
    return found.kitsu_id, found.episode


def test_a_plain_one_season_show_is_its_anime_episode_for_episode(datasets: None) -> None:
    found = resolve(MediaIds(tvdb=76885), season=1, episode=5)

    assert matched(found) == (1, 5)
    assert found.confidence == Confidence.MAPPED
    assert "AniDB 23" in found.source
    assert "Kitsu 1" in found.source


def test_a_show_split_into_anime_by_season_finds_the_seasons_anime(datasets: None) -> None:
    assert matched(resolve(MediaIds(tvdb=267440), season=1, episode=25)) == (7442, 25)
    assert matched(resolve(MediaIds(tvdb=267440), season=2, episode=7)) == (8671, 7)


def test_a_season_split_into_two_cours_continues_in_the_second_entry(datasets: None) -> None:
    assert matched(resolve(MediaIds(tvdb=267440), season=3, episode=12)) == (13569, 12)
    assert matched(resolve(MediaIds(tvdb=267440), season=3, episode=13)) == (41982, 1)
    assert matched(resolve(MediaIds(tmdb_tv=1429), season=3, episode=22)) == (41982, 10)


def test_an_episode_beyond_the_last_entrys_count_is_unmatched(datasets: None) -> None:
    found = resolve(MediaIds(tvdb=267440), season=3, episode=23)

    assert isinstance(found, Unmatched)
    assert "beyond the 10 episodes" in found.reason
    assert [c.kitsu_id for c in found.candidates] == [41982]


def test_absolute_numbering_resolves_by_season_and_by_absolute_number(datasets: None) -> None:
    assert matched(resolve(MediaIds(tvdb=83692), season=2, episode=3)) == (197, 15)
    assert matched(resolve(MediaIds(tvdb=83692), episode=15)) == (197, 15)


def test_an_absolute_episode_across_a_show_numbered_by_season_is_counted(datasets: None) -> None:
    found = resolve(MediaIds(tvdb=267440), episode=50)  # 25 + 12 + 12, then the next one

    assert matched(found) == (41982, 1)
    assert found.confidence == Confidence.COUNTED


def test_a_special_in_season_zero_is_the_special_anime(datasets: None) -> None:
    assert matched(resolve(MediaIds(tvdb=72025), season=0, episode=1)) == (266, 1)


def test_a_special_that_kitsu_counts_in_an_unnamed_entry_is_unmatched(datasets: None) -> None:
    found = resolve(MediaIds(tvdb=76885), season=0, episode=3)

    assert isinstance(found, Unmatched)
    assert "special 2" in found.reason


def test_a_mapping_list_rule_places_single_episodes(datasets: None) -> None:
    assert matched(resolve(MediaIds(tvdb=72070), season=0, episode=2)) == (120, 18)
    assert matched(resolve(MediaIds(tvdb=72070), season=1, episode=9)) == (120, 10)


def test_an_anidb_id_from_hamas_guid_is_its_anime(datasets: None) -> None:
    guid = parse_plex_guid("com.plexapp.agents.hama://anidb-23/1/5?lang=en")
    assert guid is not None

    assert matched(resolve(guid.ids, season=guid.season, episode=guid.episode)) == (1, 5)


def test_thetvdb_agents_legacy_guid_resolves_by_series_season_and_episode(datasets: None) -> None:
    guid = parse_plex_guid("com.plexapp.agents.thetvdb://267440/3/13?lang=en")
    assert guid is not None

    assert matched(resolve(guid.ids, season=guid.season, episode=guid.episode)) == (41982, 1)


def test_an_episode_with_only_its_own_ids_is_resolved_through_the_media_servers_api(
    datasets: None, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    series_id = "4e3cbd9f2c2e4f0cb6f9c1f9c5a5d6e7"
    with fake_media_server.serving("jellyfin") as server:
        server.items[series_id] = fake_media_server.jellyfin_series(series_id, Tvdb="267440")
        MediaServer.objects.create(
            kind=MediaServerKind.JELLYFIN,
            name="Home",
            url=server.url,
            api_key=fake_media_server.API_KEY,
        )

        # The webhook's episode carries its own TheTVDB episode id and the server's SeriesId.
        ids = media_servers.show_ids(user_id=user.pk, kind="jellyfin", series_key=series_id)

    assert matched(resolve(ids, season=3, episode=13, user_id=user.pk)) == (41982, 1)


def mal_mapped_anime(sandbox: Any) -> tuple[int, int, int | None]:
    """A sandbox anime with a MyAnimeList mapping: (Kitsu id, MyAnimeList id, episodes)."""
    for mapping in sandbox.store.all_mappings():
        anime = mapping.anime
        if mapping.external_site == "myanimelist/anime" and anime.landmark is None:
            return anime.id, int(mapping.external_id), anime.episode_count
    raise AssertionError("the sandbox has no MyAnimeList mapping")


def test_without_datasets_kitsus_own_mappings_are_used_and_cached(
    kitsu: Any, django_assert_max_num_queries: Any
) -> None:
    kitsu_id, mal_id, _episodes = mal_mapped_anime(kitsu)

    first = resolve(MediaIds(mal=mal_id), season=1, episode=1)
    asked = kitsu.stats()["total"]
    with django_assert_max_num_queries(3):
        again = resolve(MediaIds(mal=mal_id), season=1, episode=1)

    assert matched(first) == matched(again) == (kitsu_id, 1)
    assert "Kitsu's /mappings" in again.source
    assert kitsu.stats()["total"] == asked, "a cached id costs no Kitsu request"


def test_a_cached_dataset_id_costs_no_kitsu_request_and_at_most_three_queries(
    datasets: None, kitsu: Any, make_user: Callable[..., Any], django_assert_max_num_queries: Any
) -> None:
    user = make_user()
    asked = kitsu.stats()["total"]

    with django_assert_max_num_queries(3):
        by_mal = resolve(MediaIds(mal=38524), season=1, episode=4, user_id=user.pk)
    with django_assert_max_num_queries(3):
        by_series = resolve(MediaIds(tvdb=267440), season=3, episode=16, user_id=user.pk)

    assert matched(by_mal) == matched(by_series) == (41982, 4)
    assert kitsu.stats()["total"] == asked


def test_kitsus_answer_none_is_cached_too(kitsu: Any) -> None:
    first = resolve(MediaIds(anidb=999999999))
    asked = kitsu.stats()["total"]
    again = resolve(MediaIds(anidb=999999999))

    assert isinstance(first, Unmatched)
    assert isinstance(again, Unmatched)
    assert kitsu.stats()["total"] == asked


def test_ids_that_point_at_different_anime_are_unmatched_with_both_candidates(
    datasets: None,
) -> None:
    found = resolve(MediaIds(mal=1, anidb=9541), season=1, episode=3)

    assert isinstance(found, Unmatched)
    assert "different Kitsu anime" in found.reason
    assert sorted(c.kitsu_id for c in found.candidates) == [1, 7442]


def test_a_series_id_of_the_same_show_does_not_contradict_its_season(datasets: None) -> None:
    # Jellyfin's series carries the show's first anime's AniDB id and its TheTVDB id.
    found = resolve(MediaIds(tvdb=267440, anidb=9541), season=2, episode=3)

    assert matched(found) == (8671, 3)


def test_ids_of_an_unrelated_anime_contradict_the_series(datasets: None) -> None:
    found = resolve(MediaIds(tvdb=267440, mal=1), season=2, episode=3)

    assert isinstance(found, Unmatched)
    assert sorted(c.kitsu_id for c in found.candidates) == [1, 8671]


def titles(sandbox: Any) -> tuple[str, str]:
    """A title two sandbox anime share, and a title only one has."""
    seen: dict[str, list[Any]] = {}
    for anime in sandbox.store.anime:
        if anime is not None and not anime.nsfw:
            seen.setdefault(anime.canonical_title, []).append(anime)
    shared = next(t for t, found in seen.items() if len(found) == 2)
    single = next(t for t, found in seen.items() if len(found) == 1 and " " in t)
    return shared, single


def test_a_title_search_with_two_plausible_candidates_is_unmatched(kitsu: Any) -> None:
    shared, _ = titles(kitsu)

    found = resolve(MediaIds(), episode=1, title=shared)

    assert isinstance(found, Unmatched)
    assert len(found.candidates) == 2


def test_a_title_search_with_exactly_one_fit_is_a_title_match(kitsu: Any) -> None:
    _, single = titles(kitsu)

    found = resolve(MediaIds(), episode=1, title=single)

    assert isinstance(found, Match), found
    assert found.confidence == Confidence.TITLE


def test_a_show_whose_ids_are_known_but_unresolved_never_falls_back_to_its_title(
    kitsu: Any,
) -> None:
    _, single = titles(kitsu)
    asked = kitsu.stats()["total"]

    found = resolve(MediaIds(tvdb=123456789), season=1, episode=1, title=single)

    assert isinstance(found, Unmatched)
    searched = [r for r in kitsu.requests_log("/api/edge/anime") if "filter[text]" in str(r)]
    assert not searched
    assert kitsu.stats()["total"] - asked == 1  # Kitsu's TheTVDB mapping, no search


def test_the_users_override_beats_every_source(
    datasets: None, make_user: Callable[..., Any]
) -> None:
    user, other = make_user(), make_user()
    MediaOverride.objects.create(
        user=user, site="tvdb", external_id="267440", season=3, kitsu_id=99, episode_offset=-12
    )
    MediaOverride.objects.create(user=user, site="tvdb", external_id="76885", ignore=True)

    chosen = resolve(MediaIds(tvdb=267440), season=3, episode=13, user_id=user.pk)
    ignored = resolve(MediaIds(tvdb=76885), season=1, episode=1, user_id=user.pk)

    assert matched(chosen) == (99, 1)
    assert chosen.confidence == Confidence.EXACT
    assert isinstance(ignored, Unmatched)
    assert ignored.ignored
    # Another user's overrides change nothing for this one.
    assert matched(resolve(MediaIds(tvdb=267440), season=3, episode=13, user_id=other.pk)) == (
        41982,
        1,
    )


@pytest.mark.parametrize(("season", "episode"), [(-1, 1), (1, 0), (None, -3)])
def test_numbers_that_name_no_episode_are_unmatched(season: Any, episode: Any) -> None:
    found = resolve(MediaIds(tvdb=1), season=season, episode=episode)

    assert isinstance(found, Unmatched)
