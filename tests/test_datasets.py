"""Reading the two mapping datasets: Anime-Lists XML and Fribb's JSON in both its shapes."""

from __future__ import annotations

import io

import pytest

from kitsu_sync.datasets import (
    DatasetError,
    EpisodeRule,
    FribbEntry,
    Season,
    anime_lists_from_json,
    anime_lists_ids,
    anime_lists_json,
    fribb_entry,
    fribb_from_json,
    fribb_json,
    read_anime_lists,
    read_fribb,
)
from tests import mapping_files as files


def read_xml(*entries: str) -> list:
    return list(read_anime_lists(io.BytesIO(files.anime_lists_xml(*entries))))


def test_an_entry_keeps_its_series_default_season_offset_and_rules() -> None:
    [bebop] = read_xml(files.BEBOP)

    assert (bebop.anidb_id, bebop.tvdb_id, bebop.name) == (23, 76885, "Cowboy Bebop")
    assert bebop.tvdb_season == Season(number=1)
    assert bebop.tvdb_offset == 0
    assert (bebop.tmdb_tv_id, bebop.tmdb_season) == (30991, Season(number=1))
    assert bebop.rules == (
        EpisodeRule(
            anidb_special=True,
            tvdb_season=0,
            tmdb_season=None,
            start=1,
            end=3,
            offset=1,
            pairs=((4, ()),),  # special 4 is on no TheTVDB episode: explicitly none
        ),
    )


def test_absolute_numbering_specials_and_offsets_are_read_as_anime_lists_writes_them() -> None:
    rizelmine, seikai_special, titans_part_two = read_xml(
        files.RIZELMINE, files.SEIKAI[1], files.TITANS[3]
    )

    assert rizelmine.tvdb_season == Season(absolute=True)
    assert seikai_special.tvdb_season == Season(number=0)
    assert titans_part_two.tvdb_offset == 12
    assert titans_part_two.tmdb_offset == 12


def test_pairs_may_name_several_episodes_and_malformed_pairs_are_left_out() -> None:
    [entry] = read_xml(
        files.anime(
            9453,
            102261,
            0,
            mappings=(files.mapping(1, 0, pairs=";1-3+4+5+6;2-3;x-4;5;-2;6-y;"),),
        )
    )

    assert entry.rules[0].pairs == ((1, (3, 4, 5, 6)), (2, (3,)))


@pytest.mark.parametrize("sentinel", ["movie", "OVA", "hentai", "tv special", "unknown", ""])
def test_a_tvdbid_that_is_no_number_is_kept_as_a_kind_never_as_an_id(sentinel: str) -> None:
    [entry] = read_xml(files.anime(7, sentinel, "", tmdbid="738091,823417", imdbid="tt1,tt2"))

    assert entry.tvdb_id is None
    assert entry.tvdb_kind == sentinel
    assert entry.tmdb_movie_ids == (738091, 823417)
    assert entry.imdb_ids == ("tt1", "tt2")


def test_missing_attributes_read_as_empty_ones() -> None:
    # anime-list.xml and anime-list-full.xml leave empty attributes out altogether.
    [entry] = read_xml('<anime anidbid="5"><name>Bare</name></anime>')

    assert entry == anime_lists_from_json(anime_lists_json(entry))
    assert (entry.tvdb_id, entry.tvdb_season, entry.tvdb_offset) == (None, Season(), 0)


def test_an_entry_without_an_anidb_id_is_skipped() -> None:
    assert read_xml('<anime anidbid="x"><name>?</name></anime>', files.BEBOP)[0].anidb_id == 23


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>rate limited</body></html>", "not an Anime-Lists file"),
        (b"<anime-list><anime anidbid='1'>", "not well-formed"),
        (b'{"not": "xml"}', "not well-formed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><anime-list>&b;</anime-list>',
            "holds what no list needs",
        ),
    ],
)
def test_a_file_that_is_not_an_anime_list_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        list(read_anime_lists(io.BytesIO(body)))


def test_an_entry_survives_its_trip_through_the_database_as_json() -> None:
    for entry in read_xml(files.BEBOP, *files.TITANS, files.CHOBITS, files.RIZELMINE):
        assert anime_lists_from_json(anime_lists_json(entry)) == entry


def test_an_entry_is_looked_up_by_its_anidb_tvdb_tmdb_and_imdb_ids() -> None:
    [movie] = read_xml(files.MONONOKE)
    [bebop] = read_xml(files.BEBOP)

    assert anime_lists_ids(movie) == {
        "anidb": ("7",),
        "tmdb_movie": ("128",),
        "imdb": ("tt0119698",),
    }
    assert anime_lists_ids(bebop) == {"anidb": ("23",), "tvdb": ("76885",), "tmdb_tv": ("30991",)}


# --- Fribb ----------------------------------------------------------------------------------


def test_the_current_shape_is_read_with_its_season_offset_and_id_objects() -> None:
    record = {
        "type": "TV",
        "anidb_id": 14444,
        "anilist_id": 104578,
        "imdb_id": ["tt2560140"],
        "kitsu_id": 41982,
        "mal_id": 38524,
        "simkl_id": 931899,
        "themoviedb_id": {"tv": 1429},
        "tvdb_id": 267440,
        "season": {"tvdb": 3, "tmdb": 3},
        "episode_offset": {"tvdb": 12, "tmdb": 12},
    }

    assert fribb_entry(record) == FribbEntry(
        anidb_id=14444,
        kitsu_id=41982,
        mal_id=38524,
        anilist_id=104578,
        tvdb_id=267440,
        tvdb_season=3,
        tvdb_offset=12,
        tmdb_tv_id=1429,
        tmdb_season=3,
        tmdb_offset=12,
        imdb_ids=("tt2560140",),
        kind="TV",
    )


def test_the_first_shape_is_read_too() -> None:
    entry = first_shape(
        1, kitsu_id=265, mal_id=290, anilist_id=290, thetvdb_id=72025, themoviedb_id=26209
    )

    assert (entry.anidb_id, entry.kitsu_id, entry.tvdb_id) == (1, 265, 72025)
    assert (entry.tmdb_tv_id, entry.tmdb_movie_ids) == (26209, ())
    assert entry.tvdb_season is None  # the first shape had no season


def first_shape(*args: object, **ids: object) -> FribbEntry:
    entry = fribb_entry(files.fribb_first_shape(*args, **ids))  # type: ignore[arg-type]
    assert entry is not None
    return entry


def test_a_first_shape_movie_id_is_a_movie_id_and_bad_tmdb_values_are_no_ids() -> None:
    movie = first_shape(7, kitsu_id=142, thetvdb_id="movie", themoviedb_id=128, imdb_id="tt0119698")
    imdb_by_mistake = first_shape(7, thetvdb_id="movie", themoviedb_id="tt0119698")
    unknown = first_shape(9, thetvdb_id=80980, themoviedb_id=-1)
    neither = first_shape(10, themoviedb_id=55)

    assert (movie.tmdb_movie_ids, movie.tvdb_id, movie.imdb_ids) == ((128,), None, ("tt0119698",))
    assert imdb_by_mistake.tmdb_movie_ids == ()
    assert unknown.tmdb_tv_id is None
    # A bare number with no TheTVDB id says neither TV nor movie: no guess.
    assert (neither.tmdb_tv_id, neither.tmdb_movie_ids) == (None, ())


def test_a_record_naming_no_anidb_kitsu_or_mal_id_is_skipped() -> None:
    assert fribb_entry({"anime-planet_id": "x", "livechart_id": 3}) is None
    assert fribb_entry("not a record") is None
    assert fribb_entry({"anidb_id": 12512}) == FribbEntry(anidb_id=12512)


def test_a_fribb_file_is_read_record_by_record_and_a_wrong_file_is_refused() -> None:
    entries = list(read_fribb(io.BytesIO(files.FRIBB)))

    assert len(entries) == len(files.KITSU_ANIME)
    assert all(fribb_from_json(fribb_json(entry)) == entry for entry in entries)
    with pytest.raises(DatasetError, match="not JSON"):
        list(read_fribb(io.BytesIO(b"<html>")))
    with pytest.raises(DatasetError, match="not a JSON array"):
        list(read_fribb(io.BytesIO(b'{"data": []}')))


def test_a_fribb_record_is_looked_up_by_every_id_it_carries() -> None:
    entry = fribb_entry(
        files.fribb_record(7, kitsu_id=142, mal_id=164, tmdb_movie=[128, 129], imdb=["tt1"])
    )

    assert entry is not None
    assert entry.ids() == {
        "anidb": ("7",),
        "kitsu": ("142",),
        "mal": ("164",),
        "tmdb_movie": ("128", "129"),
        "imdb": ("tt1",),
    }
