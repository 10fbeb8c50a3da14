"""Anime, mappings, trending, genres and categories, compared with the examples of
docs/kitsu-api.md."""

from __future__ import annotations

import re

import pytest

JSONAPI = "application/vnd.api+json"

ISO_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
ANIME_ATTRIBUTES = [
    "createdAt", "updatedAt", "slug", "synopsis", "description", "coverImageTopOffset",
    "titles", "canonicalTitle", "abbreviatedTitles", "averageRating", "ratingFrequencies",
    "userCount", "favoritesCount", "startDate", "endDate", "nextRelease", "popularityRank",
    "ratingRank", "ageRating", "ageRatingGuide", "subtype", "status", "tba", "posterImage",
    "coverImage", "episodeCount", "episodeLength", "totalLength", "youtubeVideoId", "showType",
    "nsfw",
]  # fmt: skip


def optional(value, kind) -> bool:
    return value is None or isinstance(value, kind)


def check_anime(resource: dict, base: str) -> None:
    assert resource["type"] == "anime"
    assert isinstance(resource["id"], str)
    assert resource["links"] == {"self": f"{base}/anime/{resource['id']}"}
    attributes = resource["attributes"]
    assert list(attributes) == ANIME_ATTRIBUTES
    assert ISO_TIMESTAMP.match(attributes["createdAt"])
    assert ISO_TIMESTAMP.match(attributes["updatedAt"])
    assert isinstance(attributes["titles"], dict)
    assert isinstance(attributes["canonicalTitle"], str)
    assert all(isinstance(t, str) for t in attributes["abbreviatedTitles"])
    rating = attributes["averageRating"]
    assert rating is None or re.fullmatch(r"\d{1,3}\.\d\d", rating)
    assert all(
        isinstance(k, str) and isinstance(v, str) and v.isdigit()
        for k, v in attributes["ratingFrequencies"].items()
    )
    for name in ("userCount", "favoritesCount", "coverImageTopOffset"):
        assert isinstance(attributes[name], int)
    for name in ("popularityRank", "ratingRank", "episodeCount", "episodeLength", "totalLength"):
        assert optional(attributes[name], int)
    for name in ("startDate", "endDate"):
        assert attributes[name] is None or ISO_DATE.match(attributes[name])
    assert attributes["nextRelease"] is None or ISO_TIMESTAMP.match(attributes["nextRelease"])
    assert attributes["ageRating"] in ("G", "PG", "R", "R18", None)
    assert attributes["subtype"] in ("TV", "special", "OVA", "ONA", "movie", "music")
    assert attributes["showType"] == attributes["subtype"]
    assert attributes["status"] in ("current", "finished", "tba", "unreleased", "upcoming")
    assert attributes["nsfw"] is (attributes["ageRating"] == "R18")
    assert attributes["synopsis"] == attributes["description"]
    for relationship, value in resource["relationships"].items():
        dashed = re.sub(r"([A-Z])", lambda m: "-" + m[1].lower(), relationship)
        assert value["links"] == {
            "self": f"{base}/anime/{resource['id']}/relationships/{dashed}",
            "related": f"{base}/anime/{resource['id']}/{dashed}",
        }


def test_anime_by_id_matches_the_documented_example(sandbox, get):
    response = get("/anime/1", include="genres")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSONAPI
    body = response.json()
    anime = body["data"]
    check_anime(anime, sandbox.api_url)
    attributes = anime["attributes"]
    assert attributes["slug"] == "cowboy-bebop"
    assert attributes["averageRating"] == "82.23"
    assert attributes["episodeCount"] == 26
    assert attributes["posterImage"]["tiny"] == (
        "https://media.kitsu.app/anime/poster_images/1/tiny.jpg"
    )
    assert attributes["posterImage"]["meta"]["dimensions"]["tiny"] == {"width": 110, "height": 156}
    assert set(attributes["coverImage"]) == {"tiny", "large", "small", "original", "meta"}
    assert {"genres", "categories", "mappings", "episodes", "streamingLinks"} <= set(
        anime["relationships"]
    )
    genres = anime["relationships"]["genres"]["data"]
    assert {"type": "genres", "id": "1"} in genres
    assert "data" not in anime["relationships"]["mappings"]
    included = {(r["type"], r["id"]): r for r in body["included"]}
    assert set(included) == {(g["type"], g["id"]) for g in genres}
    action = included[("genres", "1")]
    assert list(action["attributes"]) == ["createdAt", "updatedAt", "name", "slug", "description"]
    assert action["attributes"]["name"] == "Action"
    assert action["attributes"]["description"] is None


def test_anime_includes_mappings_and_categories(get):
    body = get("/anime/12", include="mappings,categories").json()
    mappings = [r for r in body["included"] if r["type"] == "mappings"]
    assert {m["attributes"]["externalSite"] for m in mappings} >= {"myanimelist/anime", "anidb"}
    assert all(isinstance(m["attributes"]["externalId"], str) for m in mappings)
    assert any(r["type"] == "categories" for r in body["included"])
    assert body["data"]["attributes"]["episodeCount"] is None
    assert body["data"]["attributes"]["status"] == "current"


def test_a_bad_include_is_400_code_112(get):
    response = get("/anime/1", include="nonsense")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "title": "Invalid field",
                "detail": "nonsense is not a valid relationship of anime",
                "code": "112",
                "status": "400",
            }
        ]
    }


def test_a_non_integer_anime_id_is_400(get):
    response = get("/anime/cowboy-bebop")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["title"], error["code"], error["status"]) == ("Invalid field value", "103", "400")


def test_a_missing_anime_is_404_record_not_found(get):
    response = get("/anime/99999999")
    assert response.status_code == 404
    assert response.json()["errors"] == [
        {
            "title": "Record not found",
            "detail": "The record identified by 99999999 could not be found.",
            "code": "404",
            "status": "404",
        }
    ]


def r18_anime_id(sandbox) -> str:
    return str(next(a.id for a in sandbox.store.anime if a.nsfw))


def test_r18_anime_is_404_for_anonymous_callers_and_shown_to_adults(sandbox, get, token):
    anime_id = r18_anime_id(sandbox)
    assert get(f"/anime/{anime_id}").status_code == 404
    adult = get(f"/anime/{anime_id}", token(1))
    assert adult.status_code == 200
    assert adult.json()["data"]["attributes"]["nsfw"] is True
    # User 2 keeps the SFW filter on.
    assert get(f"/anime/{anime_id}", token(2)).status_code == 404


def test_r18_anime_is_left_out_of_anonymous_lists(sandbox, get, token):
    anime_id = r18_anime_id(sandbox)
    assert get("/anime", **{"filter[id]": anime_id}).json()["data"] == []
    assert len(get("/anime", token(1), **{"filter[id]": anime_id}).json()["data"]) == 1


def test_anime_list_pages_by_ten_with_meta_count_and_links(sandbox, get):
    body = get("/anime").json()
    assert len(body["data"]) == 10
    visible = sum(1 for a in sandbox.store.anime if not a.nsfw)
    assert body["meta"] == {"count": visible}
    base = f"{sandbox.api_url}/anime?page%5Blimit%5D=10&page%5Boffset%5D="
    assert body["links"] == {
        "first": f"{base}0",
        "next": f"{base}10",
        "last": f"{base}{visible - 10}",
    }
    assert [a["id"] for a in body["data"]] == sorted((a["id"] for a in body["data"]), key=int)
    for anime in body["data"]:
        check_anime(anime, sandbox.api_url)


@pytest.mark.parametrize(("limit", "status"), [("20", 200), ("21", 400)])
def test_anime_page_limit_is_capped_at_twenty(get, limit, status):
    response = get("/anime", **{"page[limit]": limit})
    assert response.status_code == status
    if status == 400:
        assert response.json() == {
            "errors": [
                {
                    "title": "Invalid page value",
                    "detail": "Limit exceeds maximum page size of 20.",
                    "code": "118",
                    "status": "400",
                }
            ]
        }


def test_a_zero_page_limit_is_not_a_valid_value(get):
    error = get("/anime", **{"page[limit]": "0"}).json()["errors"][0]
    assert error["detail"] == "0 is not a valid value for limit page parameter."
    assert error["code"] == "118"


def test_an_unknown_filter_is_400_code_102(get):
    response = get("/anime", **{"filter[colour]": "red"})
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "title": "Filter not allowed",
        "detail": "colour is not allowed.",
        "code": "102",
        "status": "400",
    }


def test_an_invalid_sort_is_400_code_114(get):
    assert get("/anime", sort="-colour").json()["errors"][0]["code"] == "114"


def test_anime_filter_by_slug_and_subtype_and_status(get):
    assert [a["id"] for a in get("/anime", **{"filter[slug]": "cowboy-bebop"}).json()["data"]] == [
        "1"
    ]
    movies = get("/anime", **{"filter[subtype]": "movie", "page[limit]": "20"}).json()["data"]
    assert movies
    assert {a["attributes"]["subtype"] for a in movies} == {"movie"}
    finished = get("/anime", **{"filter[status]": "finished,current"}).json()["data"]
    assert {a["attributes"]["status"] for a in finished} <= {"finished", "current"}


def test_anime_text_search_matches_titles(get):
    body = get("/anime", **{"filter[text]": "cowboy bebop"}).json()
    assert body["data"][0]["id"] == "1"
    assert get("/anime", **{"filter[text]": "zzzz-nothing"}).json()["meta"]["count"] == 0


def test_anime_season_filters_follow_kitsu_rules(sandbox, get):
    anime = next(
        a
        for a in sandbox.store.anime
        if a.start_day is not None
        and not a.nsfw
        and a.landmark is None
        and get(f"/anime/{a.id}").json()["data"]["attributes"]["startDate"][5:7] == "12"
    )
    start = get(f"/anime/{anime.id}").json()["data"]["attributes"]["startDate"]
    year = int(start[:4])
    found = get(
        "/anime",
        **{
            "filter[season]": "winter",
            "filter[seasonYear]": str(year + 1),
            "filter[id]": str(anime.id),
        },
    ).json()["data"]
    assert [a["id"] for a in found] == [str(anime.id)]
    by_year = get("/anime", **{"filter[year]": str(year), "filter[id]": str(anime.id)}).json()
    assert by_year["meta"]["count"] == 1


def test_anime_numeric_range_filters(get):
    body = get("/anime", **{"filter[averageRating]": "80..", "page[limit]": "20"}).json()
    assert body["data"]
    assert all(float(a["attributes"]["averageRating"]) >= 80 for a in body["data"])
    exclusive = get("/anime", **{"filter[episodeCount]": "1...2", "page[limit]": "20"}).json()
    assert {a["attributes"]["episodeCount"] for a in exclusive["data"]} == {1}
    assert get("/anime", **{"filter[userCount]": "abc"}).json()["errors"][0]["code"] == "107"


def test_anime_genres_filter_needs_every_genre(get):
    body = get("/anime/1", include="genres").json()
    slugs = [g["attributes"]["slug"] for g in body["included"]][:2]
    found = get("/anime", **{"filter[genres]": ",".join(slugs), "page[limit]": "20"}).json()
    assert "1" in [a["id"] for a in found["data"]]
    for anime in found["data"]:
        genre_slugs = {
            g["attributes"]["slug"]
            for g in get(f"/anime/{anime['id']}", include="genres").json()["included"]
        }
        assert set(slugs) <= genre_slugs


@pytest.mark.parametrize("sort", ["-averageRating", "popularityRank", "-userCount", "-startDate"])
def test_anime_sorts_with_nulls_last(get, sort):
    key = sort.lstrip("-")
    values = [
        a["attributes"][key]
        for a in get("/anime", sort=sort, **{"page[limit]": "20"}).json()["data"]
    ]
    present = [v for v in values if v is not None]
    as_number = [float(v) if key == "averageRating" else v for v in present]
    assert as_number == sorted(as_number, reverse=sort.startswith("-"))
    assert values[: len(present)] == present


def test_anime_mappings_related_endpoint_lists_them(sandbox, get):
    body = get("/anime/1/mappings").json()
    assert {
        (m["attributes"]["externalSite"], m["attributes"]["externalId"]) for m in body["data"]
    } == {
        ("myanimelist/anime", "1"),
        ("anilist/anime", "1"),
        ("anidb", "23"),
        ("thetvdb/series", "76885"),
    }
    assert body["meta"]["count"] == 4
    assert body["links"]["first"].startswith(f"{sandbox.api_url}/anime/1/mappings?")


def test_mapping_lookup_matches_the_documented_example(sandbox, get):
    body = get(
        "/mappings",
        **{
            "filter[externalSite]": "myanimelist/anime",
            "filter[externalId]": "21",
            "include": "item",
        },
    ).json()
    (mapping,) = body["data"]
    assert mapping["type"] == "mappings"
    assert list(mapping["attributes"]) == ["createdAt", "updatedAt", "externalSite", "externalId"]
    assert mapping["attributes"]["externalId"] == "21"
    assert mapping["relationships"]["item"]["data"] == {"type": "anime", "id": "12"}
    assert mapping["relationships"]["item"]["links"]["related"] == (
        f"{sandbox.api_url}/mappings/{mapping['id']}/item"
    )
    assert [r["id"] for r in body["included"]] == ["12"]
    assert body["meta"] == {"count": 1}
    expected = (
        f"{sandbox.api_url}/mappings?filter%5BexternalId%5D=21"
        "&filter%5BexternalSite%5D=myanimelist%2Fanime&include=item"
        "&page%5Blimit%5D=10&page%5Boffset%5D=0"
    )
    assert body["links"] == {"first": expected, "last": expected}


def test_one_tvdb_series_can_map_to_several_anime(sandbox, get):
    shared = next(
        (a, b)
        for a, b in zip(sandbox.store.anime, sandbox.store.anime[1:], strict=False)
        if a.id % 2 == 0
        and not a.landmark
        and not a.nsfw
        and not b.nsfw
        and {m.site for m in a.mappings} >= {3}
        and {m.site for m in b.mappings} >= {3}
    )
    external_id = next(m.external_id for m in shared[0].mappings if m.site == 3)
    body = get(
        "/mappings",
        **{
            "filter[externalSite]": "thetvdb/series",
            "filter[externalId]": external_id,
            "include": "item",
        },
    ).json()
    assert {m["relationships"]["item"]["data"]["id"] for m in body["data"]} == {
        str(shared[0].id),
        str(shared[1].id),
    }


def test_unknown_external_id_gives_an_empty_list(get):
    body = get("/mappings", **{"filter[externalSite]": "anidb", "filter[externalId]": "7"}).json()
    assert body["data"] == []
    assert body["meta"] == {"count": 0}


def test_trending_is_only_data_and_honours_limit(get):
    body = get("/trending/anime", limit="3").json()
    assert list(body) == ["data"]
    assert len(body["data"]) == 3
    assert all(a["type"] == "anime" for a in body["data"])
    assert len(get("/trending/anime").json()["data"]) == 10


def test_trending_of_another_namespace_is_invalid(get):
    response = get("/trending/people")
    assert response.status_code == 400
    assert response.json() == {"errors": [{"status": 400, "detail": "Invalid namespace"}]}


def test_genres_are_unpaginated(sandbox, get):
    body = get("/genres").json()
    assert len(body["data"]) == body["meta"]["count"] == len(sandbox.store.genres)
    assert "links" not in body
    assert get("/genres/13").json()["data"]["attributes"]["name"] == "Sci-Fi"


def test_categories_have_their_documented_attributes(get):
    category = get("/categories/4", include="parent").json()
    assert list(category["data"]["attributes"]) == [
        "createdAt", "updatedAt", "title", "description", "totalMediaCount", "slug", "nsfw",
        "childCount",
    ]  # fmt: skip
    assert category["data"]["relationships"]["parent"]["data"] == {"type": "categories", "id": "3"}


def test_manga_is_served_for_library_media(get):
    manga = get("/manga/1").json()["data"]
    assert manga["type"] == "manga"
    assert "chapterCount" in manga["attributes"]


def test_unknown_routes_are_404_with_an_integer_status(get, sandbox):
    for path in ("/nonsense", "/anime/1/2/3"):
        response = get(path)
        assert response.status_code == 404
        assert response.json() == {"errors": [{"status": 404, "title": "Route Not Found"}]}


def test_sparse_fieldsets_limit_attributes(get):
    anime = get("/anime/1", **{"fields[anime]": "slug,canonicalTitle"}).json()["data"]
    assert anime["attributes"] == {"slug": "cowboy-bebop", "canonicalTitle": "Cowboy Bebop"}
    assert get("/anime/1", **{"fields[anime]": "colour"}).json()["errors"][0]["code"] == "104"


def test_links_use_the_host_the_client_asked_for(sandbox):
    import requests

    url = f"{sandbox.api_url.replace('127.0.0.1', 'localhost')}/anime/1"
    body = requests.get(url, timeout=10).json()
    assert body["data"]["links"]["self"].startswith("http://localhost:")


def test_html_sensitive_characters_are_escaped_as_rails_does(sandbox):
    import requests

    raw = requests.get(f"{sandbox.api_url}/anime", timeout=10).content
    assert b"&" not in raw
    assert b"\\u0026page" in raw


def test_manga_and_categories_lists(sandbox, get):
    manga = get("/manga", **{"page[limit]": "5"}).json()
    assert [m["type"] for m in manga["data"]] == ["manga"] * 5
    assert manga["meta"]["count"] == len(sandbox.store.manga)
    categories = get("/categories").json()
    assert len(categories["data"]) == categories["meta"]["count"] == len(sandbox.store.categories)
    assert get("/genres", **{"filter[slug]": "sci-fi"}).json()["data"][0]["id"] == "13"


def test_a_mapping_and_its_item_by_id(get):
    mapping_id = get("/anime/12/mappings").json()["data"][0]["id"]
    mapping = get(f"/mappings/{mapping_id}").json()["data"]
    assert mapping["attributes"]["externalSite"] == "myanimelist/anime"
    item = get(f"/mappings/{mapping_id}/item").json()["data"]
    assert (item["type"], item["id"]) == ("anime", "12")


def test_relationship_endpoints_give_linkage_only(sandbox, get):
    body = get("/anime/1/relationships/genres").json()
    assert body["links"]["related"] == f"{sandbox.api_url}/anime/1/genres"
    assert {"type": "genres", "id": "1"} in body["data"]
    assert all(set(ref) == {"type", "id"} for ref in body["data"])
    assert get("/anime/1/relationships/nonsense").status_code == 404


def test_unmodelled_relationships_are_empty(get):
    body = get("/anime/1/episodes").json()
    assert (body["data"], body["meta"]["count"]) == ([], 0)


def test_users_list_is_paginated(sandbox, get):
    body = get("/users").json()
    assert [u["id"] for u in body["data"]] == [str(1000 + i) for i in range(1, 4)]
    assert body["meta"]["count"] == sandbox.config.users
