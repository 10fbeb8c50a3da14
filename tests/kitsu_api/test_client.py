from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from kitsu_sync.kitsu_api import (
    KitsuClient,
    KitsuForbidden,
    KitsuResponseError,
    KitsuUsageError,
    Resource,
    format_since,
)
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import ACCESS_TOKEN, API_URL

JSONAPI = {"Content-Type": "application/vnd.api+json"}
ENTRIES_URL = f"{API_URL}/library-entries"


def add_json(
    mock: responses.RequestsMock, method: str, url: str, body: Any, status: int = 200, **kw: Any
) -> None:
    mock.add(method, url, body=json.dumps(body), status=status, headers=JSONAPI, **kw)


def query_of(mock: responses.RequestsMock, index: int = 0) -> dict[str, list[str]]:
    return parse_qs(urlsplit(mock.calls[index].request.url).query)


def serve_library(
    mock: responses.RequestsMock, *, count: int, limit: int, user_id: str = "373871"
) -> None:
    """A paginating /library-entries: the page depends on page[offset] (0 when absent)."""

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        offset = int(query.get("page[offset]", ["0"])[0])
        body = payloads.library_page(user_id=user_id, offset=offset, limit=limit, count=count)
        return 200, JSONAPI, json.dumps(body)

    mock.add_callback("GET", re.compile(re.escape(ENTRIES_URL) + r"(\?.*)?$"), callback=page)


# --- anime metadata -----------------------------------------------------------------------------


def test_anime_deserialises_the_cowboy_bebop_payload_with_its_genres(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(mocked, "GET", f"{API_URL}/anime/1", payloads.cowboy_bebop_document())

    anime = kitsu_client.anime(1, include=("genres",))

    assert query_of(mocked) == {"include": ["genres"]}
    assert (anime.type, anime.id) == ("anime", "1")
    assert anime.attr("canonicalTitle") == "Cowboy Bebop"
    assert anime.attr("titles")["ja_jp"] == "カウボーイビバップ"
    # averageRating and rating frequencies are strings; counts are integers.
    assert anime.attr("averageRating") == "82.23"
    assert anime.attr("ratingFrequencies")["20"] == "37582"
    assert anime.attr("userCount") == 159386
    assert anime.attr("posterImage")["meta"]["dimensions"]["tiny"] == {"width": 110, "height": 156}
    assert [genre.attr("name") for genre in anime.related_list("genres")] == ["Action", "Sci-Fi"]
    # Kitsu sends linkage only for included relationships.
    assert anime.relationships["mappings"].loaded is False
    assert anime.related("mappings") is None


def test_anime_includes_mappings_by_default(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(mocked, "GET", f"{API_URL}/anime/1", payloads.cowboy_bebop_document())

    kitsu_client.anime("1")

    assert query_of(mocked) == {"include": ["mappings"]}


@pytest.mark.parametrize("bad_id", ["cowboy-bebop", "../users", "", "1 ", -1, True])
def test_anime_refuses_a_non_numeric_id_before_sending(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient, bad_id: Any
) -> None:
    # /anime/cowboy-bebop is a 400 on Kitsu; slugs go through filter[slug].
    with pytest.raises(KitsuUsageError):
        kitsu_client.anime(bad_id)

    assert len(mocked.calls) == 0


def test_anime_that_answers_a_list_is_a_response_error(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(mocked, "GET", f"{API_URL}/anime/1", {"data": [], "meta": {"count": 0}})

    with pytest.raises(KitsuResponseError):
        kitsu_client.anime(1)


def test_search_anime_filters_by_text_with_a_page_of_twenty(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    body = {
        "data": [payloads.anime_resource("1"), payloads.anime_resource("4")],
        "meta": {"count": 2},
        "links": {"first": f"{API_URL}/anime", "last": f"{API_URL}/anime"},
    }
    add_json(mocked, "GET", f"{API_URL}/anime", body)

    found = kitsu_client.search_anime("  cowboy bebop ")

    assert [anime.id for anime in found] == ["1", "4"]
    assert query_of(mocked) == {"filter[text]": ["cowboy bebop"], "page[limit]": ["20"]}


@pytest.mark.parametrize("limit", [0, 21, 500])
def test_search_anime_refuses_a_page_limit_kitsu_would_reject(
    kitsu_client: KitsuClient, limit: int
) -> None:
    with pytest.raises(KitsuUsageError, match="between 1 and 20"):
        kitsu_client.search_anime("bebop", limit=limit)


def test_season_anime_follows_next_links_and_stops_at_the_limit(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    second_page = f"{API_URL}/anime?filter%5Bseason%5D=fall&page%5Boffset%5D=20"
    first = {
        "data": [payloads.anime_resource(str(n)) for n in range(1, 21)],
        "meta": {"count": 45},
        "links": {"next": second_page},
    }
    second = {
        "data": [payloads.anime_resource(str(n)) for n in range(21, 41)],
        "meta": {"count": 45},
        "links": {"next": f"{API_URL}/anime?page%5Boffset%5D=40"},
    }
    add_json(
        mocked,
        "GET",
        f"{API_URL}/anime",
        first,
        match=[
            matchers.query_param_matcher(
                {"filter[season]": "fall", "filter[seasonYear]": "2024", "page[limit]": "20"}
            )
        ],
    )
    add_json(mocked, "GET", second_page, second)

    anime = list(kitsu_client.season_anime("Fall", 2024, limit=25))

    assert [a.id for a in anime] == [str(n) for n in range(1, 26)]
    # The third page is never fetched: 25 items were enough.
    assert len(mocked.calls) == 2


@pytest.mark.parametrize(("season", "year"), [("autumn", 2024), ("fall", 24), ("", 2024)])
def test_season_anime_refuses_a_bad_season_at_call_time(
    kitsu_client: KitsuClient, season: str, year: int
) -> None:
    with pytest.raises(KitsuUsageError) as caught:
        kitsu_client.season_anime(season, year)

    assert isinstance(caught.value, ValueError)


def test_trending_anime_uses_limit_not_page_limit(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    # Trending answers only {"data": [...]}: no meta, links or included.
    add_json(
        mocked,
        "GET",
        f"{API_URL}/trending/anime",
        {"data": [payloads.anime_resource("11"), payloads.anime_resource("12")]},
    )

    trending = kitsu_client.trending_anime(limit=2)

    assert [anime.id for anime in trending] == ["11", "12"]
    assert query_of(mocked) == {"limit": ["2"]}


def test_anime_mappings_lists_every_site(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    body = {
        "data": [
            payloads.mapping_resource("10", "anidb", "23"),
            payloads.mapping_resource("11", "anilist/anime", "1"),
            payloads.mapping_resource("12", "thetvdb/series", "76885"),
        ],
        "meta": {"count": 3},
        "links": {},
    }
    add_json(mocked, "GET", f"{API_URL}/anime/1/mappings", body)

    mappings = kitsu_client.anime_mappings(1)

    assert {(m.attr("externalSite"), m.attr("externalId")) for m in mappings} == {
        ("anidb", "23"),
        ("anilist/anime", "1"),
        ("thetvdb/series", "76885"),
    }
    assert query_of(mocked) == {"page[limit]": ["20"]}


def test_lookup_external_returns_the_linked_anime(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(mocked, "GET", f"{API_URL}/mappings", payloads.mapping_lookup_document())

    anime = kitsu_client.lookup_external("myanimelist/anime", 21)

    assert isinstance(anime, Resource)
    assert (anime.type, anime.id, anime.attr("canonicalTitle")) == ("anime", "12", "One Piece")
    assert query_of(mocked) == {
        "filter[externalSite]": ["myanimelist/anime"],
        "filter[externalId]": ["21"],
        "include": ["item"],
        "page[limit]": ["20"],
    }


def test_lookup_external_returns_none_without_an_anime_mapping(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    manga_only = payloads.mapping_lookup_document()
    manga_only["data"][0]["relationships"]["item"]["data"] = {"type": "manga", "id": "12"}
    manga_only["included"][0]["type"] = "manga"
    add_json(mocked, "GET", f"{API_URL}/mappings", manga_only)
    add_json(mocked, "GET", f"{API_URL}/mappings", {"data": [], "meta": {"count": 0}})

    assert kitsu_client.lookup_external("myanimelist/manga", 21) is None
    assert kitsu_client.lookup_external("myanimelist/anime", 999999) is None


# --- users and library --------------------------------------------------------------------------


def test_current_user_reads_the_one_element_array(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(mocked, "GET", f"{API_URL}/users", {"data": [payloads.user_resource("42603")]})

    user = kitsu_client.current_user(token=ACCESS_TOKEN)

    assert user is not None
    assert (user.type, user.id, user.attr("slug")) == ("users", "42603", "spike")
    assert query_of(mocked) == {"filter[self]": ["true"]}
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_current_user_is_none_when_kitsu_treats_the_token_as_anonymous(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    # An unknown token is anonymous on Kitsu: an empty array, not a 401.
    add_json(mocked, "GET", f"{API_URL}/users", {"data": [], "meta": {"count": 0}})

    assert kitsu_client.current_user(token="unknown") is None


def test_iter_library_pages_reads_three_pages_to_the_last(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    serve_library(mocked, count=5, limit=2)

    pages = list(kitsu_client.iter_library_pages(user_id=373871, token=ACCESS_TOKEN, page_limit=2))

    assert len(pages) == 3
    assert [len(page.resources) for page in pages] == [2, 2, 1]
    assert all(page.meta["count"] == 5 for page in pages)
    entries = [entry for page in pages for entry in page.resources]
    assert [entry.id for entry in entries] == [str(35128879 + n) for n in range(5)]
    # Each entry links the anime included on the same page.
    assert [entry.related("anime").attr("canonicalTitle") for entry in entries] == [
        f"Anime {n}" for n in range(1, 6)
    ]
    assert pages[-1].next_url is None
    assert all(
        call.request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}" for call in mocked.calls
    )


def test_iter_library_pages_sends_filters_include_and_the_largest_page(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    serve_library(mocked, count=1, limit=500)

    list(kitsu_client.iter_library_pages(user_id="373871"))

    assert query_of(mocked) == {
        "filter[userId]": ["373871"],
        "filter[kind]": ["anime"],
        "page[limit]": ["500"],
        "include": ["anime,anime.mappings"],
    }
    assert "Authorization" not in mocked.calls[0].request.headers


def test_iter_library_pages_streams_one_page_per_request(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    serve_library(mocked, count=5, limit=2)

    pages = kitsu_client.iter_library_pages(user_id=373871, page_limit=2)
    assert len(mocked.calls) == 0
    next(pages)
    assert len(mocked.calls) == 1
    next(pages)
    assert len(mocked.calls) == 2


def test_since_is_sent_as_iso_8601_utc_with_milliseconds(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    serve_library(mocked, count=1, limit=500)
    since = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))

    list(kitsu_client.iter_library_pages(user_id=1, since=since, status=("current", "on_hold")))

    query = query_of(mocked)
    assert query["filter[since]"] == ["2024-01-02T01:04:05.678Z"]
    assert query["filter[status]"] == ["current,on_hold"]


def test_format_since_refuses_a_naive_datetime() -> None:
    assert format_since(datetime(2024, 5, 6, tzinfo=UTC)) == "2024-05-06T00:00:00.000Z"
    with pytest.raises(KitsuUsageError, match="timezone-aware"):
        format_since(datetime(2024, 5, 6))


@pytest.mark.parametrize(
    "arguments",
    [
        {"page_limit": 501},
        {"page_limit": 0},
        {"kind": "drama"},
        {"status": "watching"},
        {"status": ["onHold"]},
        {"user_id": "spike"},
    ],
)
def test_iter_library_pages_refuses_requests_kitsu_would_reject(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient, arguments: dict[str, Any]
) -> None:
    options: dict[str, Any] = {"user_id": 1, **arguments}

    with pytest.raises(KitsuUsageError):
        kitsu_client.iter_library_pages(**options)

    assert len(mocked.calls) == 0


def test_pagination_that_loops_is_stopped_with_a_response_error(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    page_two = f"{ENTRIES_URL}?filter%5BuserId%5D=1&page%5Boffset%5D=1"
    page_three = f"{ENTRIES_URL}?filter%5BuserId%5D=1&page%5Boffset%5D=2"

    def page(entry_id: str, next_url: str) -> dict[str, Any]:
        return {
            "data": [payloads.library_entry_resource(entry_id, anime_id=None)],
            "meta": {"count": 3},
            "links": {"next": next_url},
        }

    add_json(
        mocked,
        "GET",
        ENTRIES_URL,
        page("1", page_two),
        match=[matchers.query_param_matcher({"filter[userId]": "1"}, strict_match=False)],
    )
    add_json(mocked, "GET", page_two, page("2", page_three))
    add_json(mocked, "GET", page_three, page("3", page_two))

    pages = kitsu_client.iter_library_pages(user_id=1)
    read = [next(pages), next(pages), next(pages)]
    with pytest.raises(KitsuResponseError, match="already read"):
        next(pages)

    assert [doc.resources[0].id for doc in read] == ["1", "2", "3"]
    assert len(mocked.calls) == 3


def test_library_entry_fetches_one_entry_with_its_anime(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    body = payloads.library_entry_document("35128879")
    body["included"] = [payloads.anime_resource("1", canonicalTitle="Cowboy Bebop")]
    add_json(mocked, "GET", f"{ENTRIES_URL}/35128879", body)

    entry = kitsu_client.library_entry(35128879, token=ACCESS_TOKEN)

    assert entry.attr("status") == "current"
    assert entry.attr("ratingTwenty") is None
    assert entry.related("anime").attr("canonicalTitle") == "Cowboy Bebop"
    assert query_of(mocked) == {"include": ["anime,anime.mappings"]}


def test_create_library_entry_posts_user_and_anime_relationships(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(mocked, "POST", ENTRIES_URL, payloads.library_entry_document("99"), status=201)
    attributes = {"status": "current", "progress": 3, "ratingTwenty": 16, "private": False}

    entry = kitsu_client.create_library_entry(
        token=ACCESS_TOKEN, user_id=42603, anime_id="1", attributes=attributes
    )

    assert entry.id == "99"
    request = mocked.calls[0].request
    assert request.headers["Content-Type"] == "application/vnd.api+json"
    assert json.loads(request.body) == {
        "data": {
            "type": "libraryEntries",
            "attributes": attributes,
            "relationships": {
                "user": {"data": {"type": "users", "id": "42603"}},
                "anime": {"data": {"type": "anime", "id": "1"}},
            },
        }
    }


def test_update_library_entry_patches_with_the_id_in_the_body(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(
        mocked, "PATCH", f"{ENTRIES_URL}/35128879", payloads.library_entry_document(progress=4)
    )
    attributes = {"progress": 4, "ratingTwenty": None, "startedAt": "2024-01-02T00:00:00.000Z"}

    entry = kitsu_client.update_library_entry(
        token=ACCESS_TOKEN, entry_id="35128879", attributes=attributes
    )

    assert entry.attr("progress") == 4
    assert json.loads(mocked.calls[0].request.body) == {
        "data": {"type": "libraryEntries", "id": "35128879", "attributes": attributes}
    }


def test_delete_library_entry_accepts_the_204(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    mocked.add("DELETE", f"{ENTRIES_URL}/35128879", status=204)

    assert kitsu_client.delete_library_entry(token=ACCESS_TOKEN, entry_id=35128879) is None
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_writes_need_a_token(mocked: responses.RequestsMock, kitsu_client: KitsuClient) -> None:
    with pytest.raises(KitsuUsageError, match="access token"):
        kitsu_client.update_library_entry(token="", entry_id=1, attributes={"progress": 1})
    with pytest.raises(KitsuUsageError):
        kitsu_client.delete_library_entry(token="", entry_id=1)

    assert len(mocked.calls) == 0


def test_a_forbidden_write_surfaces_kitsus_reason(
    mocked: responses.RequestsMock, kitsu_client: KitsuClient
) -> None:
    add_json(mocked, "PATCH", f"{ENTRIES_URL}/5", payloads.FORBIDDEN_ERROR, status=403)

    with pytest.raises(KitsuForbidden, match="permission to update this library entry"):
        kitsu_client.update_library_entry(
            token=ACCESS_TOKEN, entry_id=5, attributes={"progress": 1}
        )
