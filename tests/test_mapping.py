from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from kitsu_sync.kitsu_api.errors import KitsuResponseError
from kitsu_sync.kitsu_api.jsonapi import Resource, parse_document
from kitsu_sync.mapping import (
    ANIME_FIELDS,
    ANIME_TEXT_LIMITS,
    EXTERNAL_ID_FIELDS,
    REVENGE_STATUSES,
    MappingError,
    anime_fields,
    avatar_url,
    external_ids,
    format_kitsu_datetime,
    kitsu_entry_attributes,
    library_entry_fields,
    parse_kitsu_date,
    parse_kitsu_datetime,
    progress_cap,
    rating_twenty_from_score,
    score_from_rating_twenty,
    status_from_kitsu,
    status_to_kitsu,
)
from kitsu_sync.models import Anime
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import AVATAR

API = "https://kitsu.app/api/edge"
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- payload factories (shaped like docs/kitsu-api.md §7) ------------------------------------

# Read-only: a test that changes attributes builds its own from the payload factories.
COWBOY_BEBOP_ATTRIBUTES = payloads.cowboy_bebop_attributes()

NOT_INCLUDED = object()
ANIME_1_LINKAGE = {"type": "anime", "id": "1"}


def relationship(owner: str, owner_id: str, name: str, data: Any = NOT_INCLUDED) -> dict[str, Any]:
    value: dict[str, Any] = {"links": payloads.relationship_links(API, f"{owner}/{owner_id}", name)}
    if data is not NOT_INCLUDED:
        value["data"] = data
    return value


def mapping_payload(site: Any, external_id: Any, *, mapping_id: str = "1175") -> dict[str, Any]:
    """A mapping of anime 1, its item linkage included."""
    return payloads.mapping_resource(mapping_id, site, external_id, base=API, item_id="1")


def make_anime(
    *,
    anime_id: str = "1",
    resource_type: str = "anime",
    drop: tuple[str, ...] = (),
    mappings: list[tuple[Any, Any]] | None = None,
    **attributes: Any,
) -> Resource:
    """Anime 1 (Cowboy Bebop), with attributes overridden or dropped.

    `mappings=None` leaves the mappings relationship unloaded (as without include=mappings);
    a list loads it, each (site, externalId) becoming an included `mappings` resource.
    """
    values = payloads.cowboy_bebop_attributes()
    values.update(attributes)
    for name in drop:
        values.pop(name)
    included: list[dict[str, Any]] = []
    mappings_relationship = relationship("anime", anime_id, "mappings")
    if mappings is not None:
        included = [
            mapping_payload(site, external, mapping_id=str(1175 + i))
            for i, (site, external) in enumerate(mappings)
        ]
        mappings_relationship = relationship(
            "anime",
            anime_id,
            "mappings",
            [{"type": "mappings", "id": item["id"]} for item in included],
        )
    payload = {
        "data": {
            "id": anime_id,
            "type": resource_type,
            "links": {"self": f"{API}/anime/{anime_id}"},
            "attributes": values,
            "relationships": {
                "categories": relationship("anime", anime_id, "categories"),
                "mappings": mappings_relationship,
            },
        },
        "included": included,
    }
    return single(payload)


def make_entry(
    *,
    entry_id: str = "35128879",
    anime: Any = ANIME_1_LINKAGE,
    media: Any = NOT_INCLUDED,
    manga: Any = NOT_INCLUDED,
    drop: tuple[str, ...] = (),
    **attributes: Any,
) -> Resource:
    """Library entry 35128879 (Cowboy Bebop, fetched with include=anime) with overrides."""
    entry = payloads.library_entry_resource(entry_id, anime_id=None, base=API, **attributes)
    for name in drop:
        entry["attributes"].pop(name)
    for name, data in (("anime", anime), ("manga", manga), ("media", media)):
        if data is not NOT_INCLUDED:
            entry["relationships"][name]["data"] = data
    payload = {
        "data": [entry],
        "included": [
            {
                "id": "1",
                "type": "anime",
                "links": {"self": f"{API}/anime/1"},
                "attributes": {"slug": "cowboy-bebop", "canonicalTitle": "Cowboy Bebop"},
                "relationships": {},
            }
        ],
        "meta": {"count": 1},
    }
    return single(payload)


def make_mapping(site: Any, external_id: Any, *, mapping_id: str = "1175") -> Resource:
    return single({"data": mapping_payload(site, external_id, mapping_id=mapping_id)})


def single(payload: dict[str, Any]) -> Resource:
    resources = parse_document(payload).resources
    assert len(resources) == 1
    return resources[0]


# --- anime_fields ------------------------------------------------------------------------------


def test_it_maps_cowboy_bebop_to_revenge_anime_fields() -> None:
    assert anime_fields(make_anime()) == {
        "kitsu_id": 1,
        "slug": "cowboy-bebop",
        "title": "Cowboy Bebop",
        "title_en": "Cowboy Bebop",
        "title_native": "カウボーイビバップ",
        "overview": COWBOY_BEBOP_ATTRIBUTES["description"],
        "episode_count": 26,
        "episode_duration": 25,
        "airing_status": "finished",
        "kitsu_score": Decimal("82.23"),
        "kitsu_rank": 142,
        "kitsu_popularity": 44,
        "poster_url": "https://media.kitsu.app/anime/poster_images/1/large.jpg",
        "backdrop_url": (
            "https://media.kitsu.app/anime/1/cover_image/large-88da0208ac7fdd1a978de8b539008bd8.jpeg"
        ),
        "subtype": "TV",
        "nsfw": False,
        "start_date": date(1998, 4, 3),
        "end_date": date(1999, 4, 24),
        "kitsu_updated_at": datetime(2025, 3, 11, 12, 0, 9, 269000, tzinfo=UTC),
    }


def test_it_leaves_external_ids_out_when_mappings_were_not_included() -> None:
    fields = anime_fields(make_anime(mappings=None))

    assert not {"mal_id", "anilist_id", "anidb_id", "tvdb_id"} & fields.keys()


def test_anime_fields_names_every_field_the_anime_mapping_returns() -> None:
    with_mappings = anime_fields(make_anime(mappings=[("myanimelist/anime", "1")]))
    without = anime_fields(make_anime(mappings=None))

    assert tuple(with_mappings) == ANIME_FIELDS
    assert tuple(without) == tuple(name for name in ANIME_FIELDS if name not in EXTERNAL_ID_FIELDS)


def test_the_text_limits_are_the_sizes_of_the_anime_columns() -> None:
    columns = {name: Anime._meta.get_field(name).max_length for name in ANIME_TEXT_LIMITS}
    assert columns == ANIME_TEXT_LIMITS


def test_an_outsized_title_is_shortened_to_its_column_with_an_ellipsis() -> None:
    long_title = "Bebop " * 200  # 1,200 characters
    fields = anime_fields(
        make_anime(canonicalTitle=long_title, titles={"en": long_title, "ja_jp": "カ" * 501})
    )

    for name in ("title", "title_en", "title_native"):
        assert len(fields[name]) == ANIME_TEXT_LIMITS[name]
        assert fields[name].endswith("\u2026")
    assert fields["title"].startswith("Bebop Bebop")


def test_an_outsized_slug_or_image_url_is_dropped_rather_than_cut() -> None:
    url = "https://media.kitsu.app/anime/poster_images/1/" + "x" * 1000 + ".jpg"
    fields = anime_fields(
        make_anime(
            slug="s" * 256,
            posterImage={"large": url},
            coverImage={"large": url, "original": url},
        )
    )

    assert (fields["slug"], fields["poster_url"], fields["backdrop_url"]) == ("", "", "")
    assert anime_fields(make_anime(slug="s" * 255))["slug"] == "s" * 255


def test_it_maps_external_ids_when_mappings_were_included() -> None:
    anime = make_anime(
        mappings=[
            ("myanimelist/anime", "1"),
            ("anidb", "23"),
            ("anilist/anime", "1"),
            ("thetvdb/series", "76885"),
            ("myanimelist/manga", "99"),
        ]
    )

    fields = anime_fields(anime)

    assert fields["mal_id"] == 1
    assert fields["anilist_id"] == 1
    assert fields["anidb_id"] == 23
    assert fields["tvdb_id"] == 76885


def test_it_clears_external_ids_when_mappings_were_included_but_empty() -> None:
    fields = anime_fields(make_anime(mappings=[]))

    assert {key: fields[key] for key in ("mal_id", "anilist_id", "anidb_id", "tvdb_id")} == {
        "mal_id": None,
        "anilist_id": None,
        "anidb_id": None,
        "tvdb_id": None,
    }


def test_it_leaves_external_ids_out_when_linked_mappings_are_missing_from_the_document() -> None:
    payload = {
        "data": {
            "id": "1",
            "type": "anime",
            "attributes": COWBOY_BEBOP_ATTRIBUTES,
            "relationships": {
                "mappings": {
                    "data": [{"type": "mappings", "id": "5"}, {"type": "mappings", "id": "6"}]
                }
            },
        },
        "included": [mapping_payload("myanimelist/anime", "1", mapping_id="5")],
    }

    fields = anime_fields(single(payload))

    assert "mal_id" not in fields
    assert "tvdb_id" not in fields


def test_it_refuses_a_mappings_relationship_that_is_to_one() -> None:
    payload = {
        "data": {
            "id": "1",
            "type": "anime",
            "attributes": COWBOY_BEBOP_ATTRIBUTES,
            "relationships": {"mappings": {"data": {"type": "mappings", "id": "1175"}}},
        },
        "included": [mapping_payload("myanimelist/anime", "1")],
    }

    with pytest.raises(MappingError, match="to-many"):
        anime_fields(single(payload))


def test_it_reads_the_anime_and_its_mappings_from_a_mapping_lookup() -> None:
    # The lookup of docs/kitsu-api.md §7.3 turned round: One Piece, its MAL mapping included.
    lookup = payloads.mapping_lookup_document(base=API)
    [mapping], [one_piece] = lookup["data"], lookup["included"]
    one_piece["relationships"] = {"mappings": {"data": [{"type": "mappings", "id": mapping["id"]}]}}
    payload = {"data": one_piece, "included": [mapping]}

    fields = anime_fields(single(payload))

    assert fields["kitsu_id"] == 12
    assert fields["episode_count"] is None
    assert fields["airing_status"] == "current"
    assert fields["mal_id"] == 21
    assert fields["kitsu_score"] is None
    assert fields["poster_url"] == ""
    assert fields["kitsu_updated_at"] is None


def test_it_leaves_title_en_empty_without_an_english_title() -> None:
    fields = anime_fields(make_anime(titles={"en_jp": "Kauboi Bibappu", "ja_jp": "カウボーイ"}))

    assert fields["title_en"] == ""
    assert fields["title_native"] == "カウボーイ"


def test_it_takes_title_en_from_en_us_when_en_is_null() -> None:
    fields = anime_fields(make_anime(titles={"en": None, "en_us": "Cowboy Bebop (US)"}))

    assert fields["title_en"] == "Cowboy Bebop (US)"


@pytest.mark.parametrize(
    ("titles", "expected"),
    [
        ({"en_jp": "Romaji", "en": "English", "ja_jp": "日本語"}, "Romaji"),
        ({"en_jp": None, "en": "English", "ja_jp": "日本語"}, "English"),
        ({"en": "", "ja_jp": "日本語"}, "日本語"),
        ({"zh_cn": "中文"}, ""),
        ({}, ""),
    ],
)
def test_it_falls_back_to_titles_without_a_canonical_title(
    titles: dict[str, Any], expected: str
) -> None:
    fields = anime_fields(make_anime(canonicalTitle=None, titles=titles))

    assert fields["title"] == expected


@pytest.mark.parametrize("titles", [["Cowboy Bebop"], "Cowboy Bebop", 7, None])
def test_it_treats_titles_that_are_not_an_object_as_no_titles(titles: Any) -> None:
    fields = anime_fields(make_anime(titles=titles))

    assert fields["title"] == "Cowboy Bebop"  # canonicalTitle still applies
    assert fields["title_en"] == ""
    assert fields["title_native"] == ""


@pytest.mark.parametrize("description", [None, "", 42])
def test_it_falls_back_to_the_synopsis_without_a_description(description: Any) -> None:
    fields = anime_fields(make_anime(description=description, synopsis="Space cowboys."))

    assert fields["overview"] == "Space cowboys."


def test_it_leaves_the_overview_empty_without_description_or_synopsis() -> None:
    assert anime_fields(make_anime(drop=("description", "synopsis")))["overview"] == ""


@pytest.mark.parametrize(
    ("average_rating", "expected"),
    [
        (None, None),
        ("82.23", Decimal("82.23")),
        ("82.2", Decimal("82.20")),
        ("82.235", Decimal("82.24")),
        ("100", Decimal("100.00")),
        ("0", Decimal("0.00")),
        (82.23, Decimal("82.23")),
    ],
)
def test_it_reads_the_average_rating_string_as_a_two_place_decimal(
    average_rating: Any, expected: Decimal | None
) -> None:
    score = anime_fields(make_anime(averageRating=average_rating))["kitsu_score"]

    assert score == expected
    if expected is not None:
        assert score.as_tuple().exponent == -2


@pytest.mark.parametrize("average_rating", ["abc", "", "NaN", "Infinity", "100.01", "-1", True, []])
def test_it_refuses_an_average_rating_that_is_not_a_percentage(average_rating: Any) -> None:
    with pytest.raises(MappingError, match="averageRating"):
        anime_fields(make_anime(averageRating=average_rating))


def test_it_maps_an_unknown_episode_count_to_none() -> None:
    fields = anime_fields(make_anime(episodeCount=None, episodeLength=None))

    assert fields["episode_count"] is None
    assert fields["episode_duration"] is None


def test_it_accepts_a_whole_float_episode_count() -> None:
    assert anime_fields(make_anime(episodeCount=12.0))["episode_count"] == 12


@pytest.mark.parametrize("episode_count", ["12abc", "12", 12.5, -1, True, {"n": 1}, 2**40])
def test_it_refuses_an_episode_count_that_is_not_a_count(episode_count: Any) -> None:
    with pytest.raises(MappingError, match="episodeCount"):
        anime_fields(make_anime(episodeCount=episode_count))


def test_it_rounds_a_fractional_episode_length_to_whole_minutes() -> None:
    assert anime_fields(make_anime(episodeLength=23.6))["episode_duration"] == 24


@pytest.mark.parametrize("episode_length", ["25", -3, False])
def test_it_refuses_an_episode_length_that_is_not_minutes(episode_length: Any) -> None:
    with pytest.raises(MappingError, match="episodeLength"):
        anime_fields(make_anime(episodeLength=episode_length))


@pytest.mark.parametrize(("name", "value"), [("ratingRank", "142"), ("popularityRank", -4)])
def test_it_refuses_a_rank_that_is_not_a_count(name: str, value: Any) -> None:
    with pytest.raises(MappingError, match=name):
        anime_fields(make_anime(**{name: value}))


def test_it_maps_a_missing_poster_and_cover_to_empty_urls() -> None:
    fields = anime_fields(make_anime(posterImage=None, coverImage=None))

    assert fields["poster_url"] == ""
    assert fields["backdrop_url"] == ""


def test_it_falls_back_through_poster_sizes() -> None:
    poster = {"tiny": "t.jpg", "small": "s.jpg", "medium": None, "original": "o.jpg"}

    assert anime_fields(make_anime(posterImage=poster))["poster_url"] == "o.jpg"
    assert (
        anime_fields(make_anime(posterImage={"medium": "m.jpg", "small": "s"}))["poster_url"]
        == "m.jpg"
    )
    assert anime_fields(make_anime(posterImage={"tiny": "t.jpg"}))["poster_url"] == ""


def test_it_falls_back_to_the_original_cover_image() -> None:
    fields = anime_fields(make_anime(coverImage={"small": "s.jpg", "original": "o.jpg"}))

    assert fields["backdrop_url"] == "o.jpg"


@pytest.mark.parametrize("image", ["https://example.test/p.jpg", ["large"], 3])
def test_it_treats_an_image_that_is_not_an_object_as_no_image(image: Any) -> None:
    assert anime_fields(make_anime(posterImage=image))["poster_url"] == ""


@pytest.mark.parametrize("subtype", ["TV", "special", "OVA", "ONA", "movie", "music"])
def test_it_keeps_kitsus_spelling_of_the_subtype(subtype: str) -> None:
    assert anime_fields(make_anime(subtype=subtype))["subtype"] == subtype


def test_it_reads_the_deprecated_show_type_when_subtype_is_missing() -> None:
    fields = anime_fields(make_anime(drop=("subtype",), showType="movie"))

    assert fields["subtype"] == "movie"


@pytest.mark.parametrize("subtype", ["tv", "Movie", "", 1])
def test_it_maps_an_unknown_subtype_to_empty(subtype: Any) -> None:
    assert anime_fields(make_anime(subtype=subtype))["subtype"] == ""


@pytest.mark.parametrize("status", ["finished", "current", "upcoming", "unreleased", "tba"])
def test_it_maps_each_airing_status(status: str) -> None:
    assert anime_fields(make_anime(status=status))["airing_status"] == status


@pytest.mark.parametrize("status", [None, "airing", 3])
def test_it_maps_a_missing_or_unknown_airing_status_to_empty(status: Any) -> None:
    assert anime_fields(make_anime(status=status))["airing_status"] == ""


def test_it_derives_nsfw_from_the_age_rating_when_nsfw_is_missing() -> None:
    assert anime_fields(make_anime(drop=("nsfw",), ageRating="R18"))["nsfw"] is True
    assert anime_fields(make_anime(nsfw=None, ageRating="R"))["nsfw"] is False


def test_it_refuses_an_nsfw_flag_that_is_not_a_boolean() -> None:
    with pytest.raises(MappingError, match="nsfw"):
        anime_fields(make_anime(nsfw="true"))


def test_it_maps_missing_dates_to_none() -> None:
    fields = anime_fields(make_anime(startDate=None, drop=("endDate",)))

    assert fields["start_date"] is None
    assert fields["end_date"] is None


@pytest.mark.parametrize("start_date", ["1998-13-01", "04/03/1998", "1998-04-03T00:00:00Z", 1998])
def test_it_refuses_a_malformed_start_date(start_date: Any) -> None:
    with pytest.raises(MappingError):
        anime_fields(make_anime(startDate=start_date))


def test_it_refuses_a_resource_that_is_not_an_anime() -> None:
    with pytest.raises(MappingError, match="anime"):
        anime_fields(make_anime(resource_type="manga"))


@pytest.mark.parametrize("anime_id", ["abc", "0", "-1", "1.5", "99999999999999999999"])
def test_it_refuses_an_anime_id_that_is_not_a_positive_integer(anime_id: str) -> None:
    with pytest.raises(MappingError, match="anime id"):
        anime_fields(make_anime(anime_id=anime_id))


# --- external_ids ------------------------------------------------------------------------------


def test_it_maps_mapping_1175_to_the_mal_id() -> None:
    assert external_ids([make_mapping("myanimelist/anime", "21")]) == {
        "mal_id": 21,
        "anilist_id": None,
        "anidb_id": None,
        "tvdb_id": None,
    }


def test_it_gives_no_ids_for_no_mappings() -> None:
    assert external_ids([]) == dict.fromkeys(("mal_id", "anilist_id", "anidb_id", "tvdb_id"))


def test_it_takes_the_series_number_from_an_old_style_thetvdb_id() -> None:
    assert external_ids([make_mapping("thetvdb", "76885/1")])["tvdb_id"] == 76885
    assert external_ids([make_mapping("thetvdb", "76885")])["tvdb_id"] == 76885


@pytest.mark.parametrize("series_first", [True, False])
def test_it_prefers_thetvdb_series_to_the_old_style_id(series_first: bool) -> None:
    series = make_mapping("thetvdb/series", "81797", mapping_id="1")
    old = make_mapping("thetvdb", "76885/1", mapping_id="2")

    mappings = [series, old] if series_first else [old, series]

    assert external_ids(mappings)["tvdb_id"] == 81797


def test_it_falls_back_to_the_old_style_tvdb_id_when_the_series_id_is_not_numeric() -> None:
    mappings = [make_mapping("thetvdb/series", "n/a"), make_mapping("thetvdb", "76885/2")]

    assert external_ids(mappings)["tvdb_id"] == 76885


@pytest.mark.parametrize("external_id", ["abc", "", "12a", "/1", "-5", "0", None, 1.5, True, ["1"]])
def test_it_maps_a_non_numeric_external_id_to_none(external_id: Any) -> None:
    assert external_ids([make_mapping("myanimelist/anime", external_id)])["mal_id"] is None


def test_it_accepts_padded_and_integer_external_ids() -> None:
    ids = external_ids([make_mapping("anidb", " 23 "), make_mapping("anilist/anime", 1)])

    assert ids["anidb_id"] == 23
    assert ids["anilist_id"] == 1


def test_it_ignores_manga_and_unknown_sites() -> None:
    mappings = [
        make_mapping("myanimelist/manga", "21"),
        make_mapping("anilist/manga", "30013"),
        make_mapping("thetvdb/season", "1"),
        make_mapping("hulu", "8"),
        make_mapping(None, "8"),
    ]

    assert external_ids(mappings) == dict.fromkeys(("mal_id", "anilist_id", "anidb_id", "tvdb_id"))


def test_it_keeps_the_first_usable_id_for_a_site() -> None:
    mappings = [
        make_mapping("myanimelist/anime", "bad", mapping_id="1"),
        make_mapping("myanimelist/anime", "21", mapping_id="2"),
        make_mapping("myanimelist/anime", "22", mapping_id="3"),
    ]

    assert external_ids(mappings)["mal_id"] == 21


def test_it_refuses_a_resource_that_is_not_a_mapping() -> None:
    with pytest.raises(MappingError, match="mappings"):
        external_ids([make_anime()])


# --- statuses ----------------------------------------------------------------------------------

STATUS_PAIRS = [
    ("current", "watching"),
    ("planned", "plan_to_watch"),
    ("completed", "completed"),
    ("on_hold", "on_hold"),
    ("dropped", "dropped"),
]


def test_it_exposes_the_five_revenge_statuses() -> None:
    assert sorted(REVENGE_STATUSES) == sorted(revenge for _, revenge in STATUS_PAIRS)


@pytest.mark.parametrize(("kitsu", "revenge"), STATUS_PAIRS)
def test_it_maps_statuses_both_ways(kitsu: str, revenge: str) -> None:
    assert status_from_kitsu(kitsu) == revenge
    assert status_to_kitsu(revenge) == kitsu


@pytest.mark.parametrize("value", ["watching", "plan_to_watch", "onHold", "CURRENT", "", None, 1])
def test_it_refuses_an_unknown_kitsu_status(value: Any) -> None:
    with pytest.raises(MappingError, match="Kitsu library status"):
        status_from_kitsu(value)


@pytest.mark.parametrize("value", ["current", "planned", "Watching", "", None])
def test_it_refuses_an_unknown_revenge_status(value: Any) -> None:
    with pytest.raises(MappingError, match="Revenge status"):
        status_to_kitsu(value)


# --- ratings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rating_twenty", "score"), [(2, 10), (3, 15), (16, 80), (20, 100)])
def test_it_turns_rating_twenty_into_a_score(rating_twenty: int, score: int) -> None:
    assert score_from_rating_twenty(rating_twenty) == score


def test_it_keeps_an_unrated_entry_unrated() -> None:
    assert score_from_rating_twenty(None) is None
    assert rating_twenty_from_score(None) is None


@pytest.mark.parametrize("rating_twenty", [0, 1, 21, 100, -2, "16", 16.0, True])
def test_it_refuses_a_rating_twenty_outside_2_to_20(rating_twenty: Any) -> None:
    with pytest.raises(MappingError, match="ratingTwenty"):
        score_from_rating_twenty(rating_twenty)


@pytest.mark.parametrize("score", range(1, 10))
def test_it_rounds_scores_1_to_9_up_to_the_lowest_rating(score: int) -> None:
    assert rating_twenty_from_score(score) == 2


@pytest.mark.parametrize(
    ("score", "rating_twenty"), [(10, 2), (12, 2), (13, 3), (50, 10), (82, 16), (98, 20), (100, 20)]
)
def test_it_rounds_a_score_to_the_nearest_rating_twenty(score: int, rating_twenty: int) -> None:
    assert rating_twenty_from_score(score) == rating_twenty


def test_it_maps_a_zero_score_to_no_rating() -> None:
    assert rating_twenty_from_score(0) is None


@pytest.mark.parametrize("score", range(10, 101, 5))
def test_it_round_trips_multiples_of_five(score: int) -> None:
    assert score_from_rating_twenty(rating_twenty_from_score(score)) == score


@pytest.mark.parametrize("score", [-1, 101, 1000, 50.0, "50", True])
def test_it_refuses_a_score_outside_0_to_100(score: Any) -> None:
    with pytest.raises(MappingError, match="score"):
        rating_twenty_from_score(score)


# --- library_entry_fields ----------------------------------------------------------------------


def test_it_maps_library_entry_35128879() -> None:
    assert library_entry_fields(make_entry()) == {
        "kitsu_entry_id": 35128879,
        "anime_kitsu_id": 1,
        "status": "watching",
        "progress": 3,
        "score": None,
        "rewatching": False,
        "rewatch_count": 0,
        "notes": "",
        "private": False,
        "started_at": datetime(2018, 9, 28, 8, 15, 32, 510000, tzinfo=UTC),
        "finished_at": None,
        "progressed_at": datetime(2018, 9, 28, 8, 16, 8, 528000, tzinfo=UTC),
        "kitsu_updated_at": datetime(2018, 9, 28, 8, 16, 8, 529000, tzinfo=UTC),
        "kitsu_created_at": datetime(2018, 9, 17, 7, 23, 40, 396000, tzinfo=UTC),
    }


def test_it_turns_the_entry_rating_twenty_into_a_score() -> None:
    assert library_entry_fields(make_entry(ratingTwenty=16, rating="4.0"))["score"] == 80


def test_it_ignores_the_deprecated_rating_string() -> None:
    assert library_entry_fields(make_entry(ratingTwenty=None, rating="3.5"))["score"] is None


def test_it_refuses_an_entry_rating_outside_2_to_20() -> None:
    with pytest.raises(MappingError, match="ratingTwenty"):
        library_entry_fields(make_entry(ratingTwenty=1))


def test_it_reads_the_anime_from_the_polymorphic_media_linkage() -> None:
    entry = make_entry(anime=NOT_INCLUDED, media={"type": "anime", "id": "12"})

    assert library_entry_fields(entry)["anime_kitsu_id"] == 12


@pytest.mark.parametrize(
    ("anime", "media", "manga"),
    [
        (None, NOT_INCLUDED, NOT_INCLUDED),  # include=anime on a manga entry
        (NOT_INCLUDED, {"type": "manga", "id": "7"}, NOT_INCLUDED),  # include=media
        (NOT_INCLUDED, NOT_INCLUDED, {"type": "manga", "id": "7"}),  # include=manga
        (None, {"type": "drama", "id": "3"}, None),
    ],
)
def test_it_gives_no_anime_id_for_an_entry_that_is_not_for_anime(
    anime: Any, media: Any, manga: Any
) -> None:
    entry = make_entry(anime=anime, media=media, manga=manga, progress=40)

    fields = library_entry_fields(entry)

    assert fields["anime_kitsu_id"] is None
    assert fields["progress"] == 40


def test_it_refuses_an_entry_whose_media_linkage_was_not_included() -> None:
    with pytest.raises(MappingError, match="include=anime"):
        library_entry_fields(make_entry(anime=NOT_INCLUDED))


def test_it_refuses_an_entry_anime_linkage_with_a_bad_id() -> None:
    with pytest.raises(MappingError, match="anime id"):
        library_entry_fields(make_entry(anime={"type": "anime", "id": "one"}))


def test_it_refuses_an_entry_anime_linkage_that_is_an_array() -> None:
    with pytest.raises(MappingError, match="to-one"):
        library_entry_fields(make_entry(anime=[ANIME_1_LINKAGE]))


def test_it_maps_a_rewatch_and_its_count() -> None:
    fields = library_entry_fields(make_entry(reconsuming=True, reconsumeCount=2))

    assert fields["rewatching"] is True
    assert fields["rewatch_count"] == 2


def test_it_keeps_notes_and_the_private_flag() -> None:
    fields = library_entry_fields(make_entry(notes="Rewatch with subs", private=True))

    assert fields["notes"] == "Rewatch with subs"
    assert fields["private"] is True


def test_it_maps_null_counts_and_flags_to_their_defaults() -> None:
    fields = library_entry_fields(
        make_entry(progress=None, reconsumeCount=None, reconsuming=None, private=None)
    )

    assert (fields["progress"], fields["rewatch_count"]) == (0, 0)
    assert (fields["rewatching"], fields["private"]) == (False, False)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("progress", -1),
        ("progress", "3"),
        ("reconsumeCount", 1.5),
        ("reconsuming", "false"),
        ("private", 0),
        ("notes", 42),
        ("startedAt", "yesterday"),
        ("status", "watching"),
    ],
)
def test_it_refuses_a_wrong_typed_entry_attribute(name: str, value: Any) -> None:
    with pytest.raises(MappingError):
        library_entry_fields(make_entry(**{name: value}))


@pytest.mark.parametrize("updated_at", [None, NOT_INCLUDED])
def test_it_refuses_an_entry_without_updated_at(updated_at: Any) -> None:
    entry = (
        make_entry(drop=("updatedAt",))
        if updated_at is NOT_INCLUDED
        else make_entry(updatedAt=updated_at)
    )

    with pytest.raises(MappingError, match="updatedAt"):
        library_entry_fields(entry)


def test_it_refuses_a_resource_that_is_not_a_library_entry() -> None:
    with pytest.raises(MappingError, match="libraryEntries"):
        library_entry_fields(make_anime())


# --- kitsu_entry_attributes --------------------------------------------------------------------


def entry_attributes(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "status": "watching",
        "progress": 4,
        "score": 80,
        "rewatching": False,
        "rewatch_count": 0,
        "episode_count": 26,
    }
    arguments.update(overrides)
    return kitsu_entry_attributes(**arguments)


def test_it_builds_the_attributes_kitsu_accepts() -> None:
    attributes = entry_attributes(
        notes="Great",
        private=False,
        started_at=datetime(2024, 1, 2, tzinfo=UTC),
        finished_at=datetime(2024, 3, 1, 18, 30, 5, 123456, tzinfo=UTC),
    )

    assert attributes == {
        "status": "current",
        "progress": 4,
        "ratingTwenty": 16,
        "reconsuming": False,
        "reconsumeCount": 0,
        "notes": "Great",
        "private": False,
        "startedAt": "2024-01-02T00:00:00.000Z",
        "finishedAt": "2024-03-01T18:30:05.123Z",
    }


def test_it_leaves_out_the_optional_attributes_not_given() -> None:
    assert set(entry_attributes()) == {
        "status",
        "progress",
        "ratingTwenty",
        "reconsuming",
        "reconsumeCount",
    }


def test_it_sends_a_null_rating_to_clear_it() -> None:
    attributes = entry_attributes(score=None)

    assert "ratingTwenty" in attributes
    assert attributes["ratingTwenty"] is None
    assert entry_attributes(score=0)["ratingTwenty"] is None


def test_it_caps_progress_at_the_episode_count() -> None:
    assert entry_attributes(progress=30, episode_count=26)["progress"] == 26


def test_it_prefers_the_episode_count_to_the_progress_cap() -> None:
    assert entry_attributes(progress=40, episode_count=26, progress_cap=50)["progress"] == 26


@pytest.mark.parametrize("episode_count", [None, 0])
def test_it_caps_progress_at_the_given_cap_without_an_episode_count(
    episode_count: int | None,
) -> None:
    attributes = entry_attributes(progress=120, episode_count=episode_count, progress_cap=100)

    assert attributes["progress"] == 100


def test_it_sends_progress_uncapped_when_no_cap_is_known() -> None:
    assert entry_attributes(progress=1200, episode_count=None)["progress"] == 1200


def test_it_caps_the_rewatch_count_at_50() -> None:
    attributes = entry_attributes(rewatching=True, rewatch_count=51)

    assert attributes["reconsuming"] is True
    assert attributes["reconsumeCount"] == 50


def test_it_sends_times_in_utc_with_milliseconds() -> None:
    tokyo = timezone(timedelta(hours=9))

    attributes = entry_attributes(started_at=datetime(2024, 1, 2, 9, 0, tzinfo=tokyo))

    assert attributes["startedAt"] == "2024-01-02T00:00:00.000Z"


def test_it_sends_a_date_as_its_midnight_in_utc() -> None:
    assert (
        entry_attributes(finished_at=date(2024, 3, 1))["finishedAt"] == "2024-03-01T00:00:00.000Z"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "current"},
        {"progress": -1},
        {"score": 101},
        {"rewatch_count": -1},
        {"rewatching": "yes"},
        {"notes": 3},
        {"private": "no"},
        {"started_at": datetime(2024, 1, 2)},
        {"episode_count": -1},
        {"progress_cap": -5, "episode_count": None},
    ],
)
def test_it_refuses_attributes_kitsu_would_reject(overrides: dict[str, Any]) -> None:
    with pytest.raises(MappingError):
        entry_attributes(**overrides)


# --- time helpers ------------------------------------------------------------------------------


def test_it_parses_a_kitsu_timestamp_to_aware_utc() -> None:
    parsed = parse_kitsu_datetime("2018-09-28T08:16:08.529Z")

    assert parsed == datetime(2018, 9, 28, 8, 16, 8, 529000, tzinfo=UTC)
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


def test_it_converts_an_offset_timestamp_to_utc() -> None:
    parsed = parse_kitsu_datetime("2018-09-28T17:16:08.529+09:00")

    assert parsed == datetime(2018, 9, 28, 8, 16, 8, 529000, tzinfo=UTC)
    assert parsed is not None
    assert parsed.tzinfo is UTC


def test_it_reads_a_timestamp_without_an_offset_as_utc() -> None:
    assert parse_kitsu_datetime("2018-09-28T08:16:08") == datetime(
        2018, 9, 28, 8, 16, 8, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2018-02-30T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 once in UTC
        1538122568,
        ["x"],
    ],
)
def test_it_refuses_a_malformed_timestamp(value: Any) -> None:
    with pytest.raises(MappingError):
        parse_kitsu_datetime(value)


def test_it_formats_a_datetime_as_kitsu_does() -> None:
    value = datetime(2018, 9, 28, 8, 16, 8, 529999, tzinfo=UTC)

    assert format_kitsu_datetime(value) == "2018-09-28T08:16:08.529Z"


def test_it_refuses_to_format_a_naive_datetime() -> None:
    with pytest.raises(MappingError, match="naive"):
        format_kitsu_datetime(datetime(2018, 9, 28))


def test_it_parses_a_kitsu_date() -> None:
    assert parse_kitsu_date("1998-04-03") == date(1998, 4, 3)
    assert parse_kitsu_date(None) is None


@pytest.mark.parametrize(
    "value", ["", "1998-4-3", "19980403", "1998-02-30", "١٩٩٨-٠٤-٠٣", 19980403]
)
def test_it_refuses_a_malformed_date(value: Any) -> None:
    with pytest.raises(MappingError):
        parse_kitsu_date(value)


# --- avatar_url --------------------------------------------------------------------------------


def test_avatar_url_prefers_the_medium_size_and_ignores_junk():
    assert avatar_url(AVATAR) == AVATAR["medium"]
    assert avatar_url({"tiny": AVATAR["tiny"]}) == AVATAR["tiny"]
    assert avatar_url({"medium": "javascript:alert(1)"}) == ""
    assert avatar_url(None) == ""
    assert avatar_url("https://not-an-object") == ""


# --- properties --------------------------------------------------------------------------------

EXTERNAL_SITES = [
    "myanimelist/anime",
    "myanimelist/manga",
    "anilist/anime",
    "anidb",
    "thetvdb",
    "thetvdb/series",
    "hulu",
]
# A value that is itself a strategy is drawn, not used as is (see attribute_objects).
MAPPING_ATTRIBUTES: dict[str, Any] = {
    "createdAt": "2017-07-27T22:21:26.824Z",
    "updatedAt": "2017-07-27T22:47:45.129Z",
    "externalSite": st.sampled_from(EXTERNAL_SITES),
    "externalId": st.sampled_from(["21", "76885/1", "76885/", "n/a"])
    | st.from_regex(r"[0-9]{1,21}", fullmatch=True),
}
INTERESTING_TEXT = [
    "current",
    "planned",
    "completed",
    "on_hold",
    "dropped",
    "finished",
    "TV",
    "R18",
    "82.23",
    "1e999999",
    "NaN",
    "-0",
    "1998-04-03",
    "1998-02-30",
    "2018-09-28T08:16:08.529Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "76885/1",
    "21",
    "12abc",
    "myanimelist/anime",
    "anilist/anime",
    "anidb",
    "thetvdb",
    "thetvdb/series",
    "",
]
MISSING = object()


def usually(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 4) -> Any:
    """`common`, except one draw in `odds` from `rare`."""
    return st.integers(0, odds - 1).flatmap(lambda n: rare if n == 0 else common)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-3, max_value=30),
    st.floats(),
    st.text(max_size=12),
    st.from_regex(r"[0-9]{1,25}", fullmatch=True),
    st.sampled_from(INTERESTING_TEXT),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["en", "en_jp", "ja_jp", "en_us", "large", "medium", "original"])
            | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)
ids = usually(
    st.sampled_from(["1", "12", "1175", "35128879"]),
    st.one_of(st.from_regex(r"[0-9]{1,22}", fullmatch=True), st.text(max_size=6), st.integers()),
)
# A small id pool so that linkage often points at resources the document includes.
linkage_ids = st.sampled_from(["1", "2", "12", "x"])
identifiers = st.fixed_dictionaries(
    {"type": st.sampled_from(["anime", "manga", "drama", "mappings", "users"]), "id": linkage_ids}
)
linkage = st.one_of(st.none(), identifiers, st.lists(identifiers, max_size=3))
any_relationships = st.dictionaries(
    st.sampled_from(["anime", "media", "manga", "drama", "mappings", "user", "item"]),
    st.one_of(
        st.fixed_dictionaries({"links": st.just({"related": f"{API}/x"})}),
        st.fixed_dictionaries({"data": linkage}),
    ),
    max_size=5,
)


def attribute_objects(base: dict[str, Any]) -> Any:
    """`base` with each value now and then dropped or swapped for junk, plus unknown keys."""
    perturbed = st.fixed_dictionaries(
        {
            name: usually(
                value if isinstance(value, st.SearchStrategy) else st.just(value),
                st.just(MISSING) | json_values,
                odds=6,
            )
            for name, value in base.items()
        }
    )
    extra = st.dictionaries(st.text(max_size=6), json_values, max_size=2)
    objects = st.builds(
        lambda values, unknown: {
            **unknown,
            **{name: value for name, value in values.items() if value is not MISSING},
        },
        perturbed,
        extra,
    )
    # Now and then not an object at all, so the deserialiser's own refusals are exercised too.
    return usually(objects, json_values, odds=10)


def resources(
    types: list[str],
    base: dict[str, Any],
    relationships: dict[str, Any],
    id_strategy: Any = ids,
) -> Any:
    return st.fixed_dictionaries(
        {
            "type": usually(st.just(types[0]), st.sampled_from(types)),
            "id": id_strategy,
            "attributes": attribute_objects(base),
            "relationships": usually(st.just(relationships), any_relationships),
        }
    )


def documents(types: list[str], base: dict[str, Any], relationships: dict[str, Any]) -> Any:
    included = st.lists(
        resources(["mappings", "anime", "manga"], MAPPING_ATTRIBUTES, {}, linkage_ids),
        max_size=4,
    )
    return st.fixed_dictionaries(
        {"data": resources(types, base, relationships)}, optional={"included": included}
    )


def parsed_or_rejected(payload: dict[str, Any]) -> list[Resource]:
    try:
        document = parse_document(payload)
    except KitsuResponseError:
        reject()
    return [*document.resources, *document.included]


@PROPERTY
@given(
    documents(
        ["anime", "manga"],
        COWBOY_BEBOP_ATTRIBUTES,
        {"mappings": {"data": [{"type": "mappings", "id": "2"}]}},
    )
)
def test_anime_fields_returns_a_dict_or_raises_mapping_error(payload: dict[str, Any]) -> None:
    for resource in parsed_or_rejected(payload):
        try:
            fields = anime_fields(resource)
        except MappingError:
            continue
        assert isinstance(fields["kitsu_id"], int)
        assert isinstance(fields["title"], str)
        assert fields["kitsu_score"] is None or Decimal(0) <= fields["kitsu_score"] <= 100
        mappings = resource.relationships.get("mappings")
        # External ids appear only from loaded mappings, so an upsert never wipes known ids.
        assert ("mal_id" in fields) <= (mappings is not None and mappings.loaded)


@PROPERTY
@given(
    documents(
        ["libraryEntries", "users"],
        payloads.library_entry_attributes(),
        {"anime": {"data": ANIME_1_LINKAGE}},
    )
)
def test_library_entry_fields_returns_a_dict_or_raises_mapping_error(
    payload: dict[str, Any],
) -> None:
    for resource in parsed_or_rejected(payload):
        try:
            fields = library_entry_fields(resource)
        except MappingError:
            continue
        assert fields["status"] in REVENGE_STATUSES
        assert fields["score"] is None or 10 <= fields["score"] <= 100
        assert fields["progress"] >= 0


@PROPERTY
@given(
    st.lists(
        resources(["mappings", "anime"], MAPPING_ATTRIBUTES, {"item": {"data": ANIME_1_LINKAGE}}),
        max_size=6,
    )
)
def test_external_ids_returns_ids_or_raises_mapping_error(items: list[dict[str, Any]]) -> None:
    mappings = parsed_or_rejected({"data": items})
    try:
        found = external_ids(mappings)
    except MappingError:
        assert any(mapping.type != "mappings" for mapping in mappings)
        return
    assert set(found) == {"mal_id", "anilist_id", "anidb_id", "tvdb_id"}
    assert all(value is None or (isinstance(value, int) and value > 0) for value in found.values())


def valid_entries() -> Any:
    attributes = st.fixed_dictionaries(
        {
            "status": st.sampled_from(["current", "planned", "completed", "on_hold", "dropped"]),
            "progress": st.integers(0, 5000),
            "ratingTwenty": st.none() | st.integers(2, 20),
            "reconsuming": st.booleans(),
            "reconsumeCount": st.integers(0, 50),
            "notes": st.none() | st.text(max_size=20),
            "private": st.booleans(),
            "updatedAt": st.datetimes(
                min_value=datetime(2013, 1, 1),
                max_value=datetime(2100, 1, 1),
                timezones=st.just(UTC),
            ).map(format_kitsu_datetime),
        }
    )
    return st.tuples(st.integers(1, 2**40), st.integers(1, 2**31), attributes)


@PROPERTY
@given(valid_entries())
def test_a_valid_entry_maps_to_matching_revenge_fields(
    entry: tuple[int, int, dict[str, Any]],
) -> None:
    entry_id, anime_id, attributes = entry
    resource = make_entry(
        entry_id=str(entry_id), anime={"type": "anime", "id": str(anime_id)}, **attributes
    )

    fields = library_entry_fields(resource)

    assert fields["kitsu_entry_id"] == entry_id
    assert fields["anime_kitsu_id"] == anime_id
    assert status_to_kitsu(fields["status"]) == attributes["status"]
    assert fields["progress"] == attributes["progress"]
    rating = attributes["ratingTwenty"]
    assert fields["score"] == (None if rating is None else rating * 5)
    assert fields["notes"] == (attributes["notes"] or "")
    assert format_kitsu_datetime(fields["kitsu_updated_at"]) == attributes["updatedAt"]


@PROPERTY
@given(st.integers(1, 100))
def test_any_nonzero_score_becomes_the_nearest_representable_rating(score: int) -> None:
    rating = rating_twenty_from_score(score)

    assert rating is not None
    assert 2 <= rating <= 20
    nearest_score = score_from_rating_twenty(rating)
    assert nearest_score is not None
    # The nearest multiple of five, except below 10, which Kitsu cannot store.
    assert abs(nearest_score - max(score, 10)) <= 2


@PROPERTY
@given(st.integers(0, 100), st.integers(0, 100))
def test_rating_twenty_never_decreases_as_the_score_rises(low: int, high: int) -> None:
    low, high = sorted((low, high))
    if low == 0:
        assert rating_twenty_from_score(low) is None
        return
    low_rating, high_rating = rating_twenty_from_score(low), rating_twenty_from_score(high)
    assert low_rating is not None
    assert high_rating is not None
    assert low_rating <= high_rating


@PROPERTY
@given(st.integers(2, 20))
def test_every_rating_twenty_survives_a_round_trip(rating: int) -> None:
    assert rating_twenty_from_score(score_from_rating_twenty(rating)) == rating


@PROPERTY
@given(
    status=st.sampled_from(REVENGE_STATUSES),
    progress=st.integers(0, 10_000),
    score=st.none() | st.integers(0, 100),
    rewatching=st.booleans(),
    rewatch_count=st.integers(0, 10_000),
    episode_count=st.none() | st.integers(0, 3_000),
    progress_cap=st.none() | st.integers(0, 3_000),
    started_at=st.none()
    | st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
    ),
)
def test_entry_attributes_stay_within_kitsus_validation(
    status: str,
    progress: int,
    score: int | None,
    rewatching: bool,
    rewatch_count: int,
    episode_count: int | None,
    progress_cap: int | None,
    started_at: datetime | None,
) -> None:
    attributes = kitsu_entry_attributes(
        status=status,
        progress=progress,
        score=score,
        rewatching=rewatching,
        rewatch_count=rewatch_count,
        episode_count=episode_count,
        progress_cap=progress_cap,
        started_at=started_at,
    )

    cap = episode_count or progress_cap
    assert attributes["progress"] == (progress if cap is None else min(progress, cap))
    assert attributes["ratingTwenty"] is None or 2 <= attributes["ratingTwenty"] <= 20
    assert (attributes["ratingTwenty"] is None) == (not score)
    assert attributes["reconsumeCount"] == min(rewatch_count, 50)
    assert status_from_kitsu(attributes["status"]) == status
    if started_at is None:
        assert "startedAt" not in attributes
    else:
        sent = parse_kitsu_datetime(attributes["startedAt"])
        assert sent is not None
        assert timedelta(0) <= started_at - sent < timedelta(milliseconds=1)


@PROPERTY
@given(st.datetimes(timezones=st.timezones()))
def test_formatted_times_parse_back_to_the_same_millisecond(value: datetime) -> None:
    try:
        text = format_kitsu_datetime(value)
    except MappingError:
        # Only a time whose UTC equivalent falls outside the calendar is refused.
        assert value.year in (1, 9999)
        return
    parsed = parse_kitsu_datetime(text)

    assert parsed is not None
    assert timedelta(0) <= value - parsed < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("episode_count", "start_date", "cap"),
    [
        (12, date(2020, 1, 1), 12),  # a known length is the cap
        (None, None, 100),  # no length, no start date
        (None, date(2026, 11, 1), 50),  # started five weeks ago: at least 50
        (None, date(2024, 12, 6), 109),  # 104 weeks ago, plus five
    ],
)
def test_the_progress_cap_is_kitsus(
    episode_count: int | None, start_date: date | None, cap: int
) -> None:
    assert progress_cap(episode_count, start_date, date(2026, 12, 6)) == cap
