"""Which AniDB episode a TheTVDB (or TMDB) season and episode is: the pure rules."""

from __future__ import annotations

import io

import pytest

from kitsu_sync.datasets import AnimeListsEntry, read_anime_lists
from kitsu_sync.episodes import (
    AniDbEpisode,
    ChainLink,
    locate_absolute_episode,
    locate_episode,
    walk_absolute,
)
from tests import mapping_files as files


def entries(*xml: str) -> list[AnimeListsEntry]:
    return list(read_anime_lists(io.BytesIO(files.anime_lists_xml(*xml))))


ALL = entries(
    files.BEBOP, *files.TITANS, *files.SEIKAI, files.CHOBITS, files.RIZELMINE, files.MONONOKE
)


def located(series: int, season: int, episode: int, *, provider: str = "tvdb") -> list[tuple]:
    found = locate_episode(ALL, provider=provider, series_id=series, season=season, episode=episode)
    return [(c.anidb_id, c.number, c.special) for c in found]


def test_a_plain_one_season_show_is_its_one_anime_episode_for_episode() -> None:
    assert located(76885, 1, 5) == [(23, 5, False)]


def test_a_show_split_by_season_is_the_anime_of_that_season() -> None:
    assert located(267440, 1, 25) == [(9541, 25, False)]
    assert located(267440, 2, 7) == [(10944, 7, False)]


def test_a_season_split_into_two_cours_continues_in_the_second_anime() -> None:
    assert located(267440, 3, 12) == [(13241, 12, False)]
    assert located(267440, 3, 13) == [(14444, 1, False)]
    assert located(267440, 3, 22) == [(14444, 10, False)]


def test_tmdb_numbering_uses_the_tmdb_season_and_offset() -> None:
    assert located(1429, 3, 13, provider="tmdb") == [(14444, 1, False)]


def test_a_special_in_season_zero_is_the_special_anime_of_that_series() -> None:
    assert located(72025, 0, 1) == [(6, 1, False)]
    assert located(72025, 1, 4) == [(1, 4, False)]


def test_a_special_that_is_an_anidb_special_says_so() -> None:
    # Cowboy Bebop's AniDB specials 1-3 are TheTVDB S0E2-4 (a range with offset 1).
    assert located(76885, 0, 3) == [(23, 2, True)]
    # Its special 4 is on no TheTVDB episode, and nothing else is S0E5.
    assert located(76885, 0, 5) == []


def test_a_mapping_list_pair_beats_the_default_season_and_offset() -> None:
    # Chobits: regular episodes 9 and 18 are TVDB specials 1 and 2.
    assert located(72070, 0, 2) == [(12, 18, False)]
    # Episodes 10-17 come one earlier on TheTVDB: S1E9 is AniDB episode 10, not 9.
    assert located(72070, 1, 9) == [(12, 10, False)]
    assert located(72070, 1, 8) == [(12, 8, False)]
    assert located(72070, 1, 24) == [(12, 26, False)]


def test_absolute_numbering_follows_its_ranges_by_season_and_takes_absolute_numbers() -> None:
    assert located(83692, 2, 3) == [(19, 15, False)]
    found = locate_absolute_episode(ALL, provider="tvdb", series_id=83692, episode=15)
    assert [(c.anidb_id, c.number) for c in found] == [(19, 15)]
    assert locate_absolute_episode(ALL, provider="tvdb", series_id=267440, episode=30) == []


def test_an_unknown_series_or_season_locates_nothing() -> None:
    assert located(999, 1, 1) == []
    assert located(76885, 2, 1) == []


def test_two_entries_claiming_the_same_episode_are_both_answers() -> None:
    twins = entries(files.anime(100, 500, 1), files.anime(101, 500, 1))

    found = locate_episode(twins, provider="tvdb", series_id=500, season=1, episode=3)

    assert sorted(c.anidb_id for c in found) == [100, 101]


def test_an_unknown_numbering_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="Unknown numbering"):
        locate_episode(ALL, provider="anidb", series_id=1, season=1, episode=1)


# --- absolute numbers across a show's anime -------------------------------------------------


def test_an_absolute_episode_is_counted_across_the_anime_season_by_season() -> None:
    chain = [
        ChainLink(9541, 1, 0, 25),
        ChainLink(10944, 2, 0, 12),
        ChainLink(13241, 3, 0, 12),
        ChainLink(14444, 3, 12, 10),
    ]

    def walked(episode: int) -> tuple[int, int]:
        found = walk_absolute(chain, episode)
        assert isinstance(found, AniDbEpisode), found
        return found.anidb_id, found.number

    assert walked(25) == (9541, 25)
    assert walked(26) == (10944, 1)
    assert walked(49) == (13241, 12)  # 25 + 12 + 12
    assert walked(50) == (14444, 1)
    assert walked(59) == (14444, 10)


def test_an_absolute_episode_past_a_gap_or_an_unknown_count_is_refused() -> None:
    gap = [ChainLink(1, 1, 0, 12), ChainLink(2, 1, 13, 12)]
    unknown = [ChainLink(1, 1, 0, None), ChainLink(2, 2, 0, 12)]

    assert "gap" in walk_absolute(gap, 20)
    assert "does not know how many" in walk_absolute(unknown, 20)
    assert "beyond" in walk_absolute([ChainLink(1, 1, 0, 12)], 13)
    assert "beyond" in walk_absolute(chain_of_titans(), 60)


def chain_of_titans() -> list[ChainLink]:
    return [ChainLink(9541, 1, 0, 25), ChainLink(10944, 2, 0, 12), ChainLink(13241, 3, 0, 12)]
