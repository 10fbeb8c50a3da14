"""GET /library-entries: filters, includes, meta, links arithmetic and visibility."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import parse_qsl, urlsplit

import pytest

ENTRY_ATTRIBUTES = [
    "createdAt", "updatedAt", "status", "progress", "volumesOwned", "reconsuming",
    "reconsumeCount", "notes", "private", "reactionSkipped", "progressedAt", "startedAt",
    "finishedAt", "rating", "ratingTwenty",
]  # fmt: skip
ISO_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def offset_of(link: str) -> int:
    return int(dict(parse_qsl(urlsplit(link).query))["page[offset]"])


def test_no_filter_is_400_with_an_integer_status(get):
    response = get("/library-entries")
    assert response.status_code == 400
    assert response.json() == {"errors": [{"status": 400, "detail": "No filter provided"}]}


def test_entries_have_the_documented_shape(sandbox, get, token):
    body = get(
        "/library-entries",
        token(1),
        **{"filter[userId]": "1001", "page[limit]": "500", "include": "anime"},
    ).json()
    base = sandbox.api_url
    for entry in body["data"]:
        assert entry["type"] == "libraryEntries"
        assert entry["links"] == {"self": f"{base}/library-entries/{entry['id']}"}
        attributes = entry["attributes"]
        assert list(attributes) == ENTRY_ATTRIBUTES
        assert attributes["status"] in ("current", "planned", "completed", "on_hold", "dropped")
        assert isinstance(attributes["progress"], int)
        assert isinstance(attributes["reconsuming"], bool)
        assert isinstance(attributes["private"], bool)
        assert attributes["reactionSkipped"] in ("unskipped", "skipped", "ignored")
        for name in ("createdAt", "updatedAt"):
            assert ISO_TIMESTAMP.match(attributes[name])
        for name in ("progressedAt", "startedAt", "finishedAt"):
            assert attributes[name] is None or ISO_TIMESTAMP.match(attributes[name])
        twenty = attributes["ratingTwenty"]
        assert twenty is None or (isinstance(twenty, int) and 2 <= twenty <= 20)
        expected = "0.0" if twenty is None else f"{(twenty // 2) / 2:.1f}"
        assert attributes["rating"] == expected
        relationships = entry["relationships"]
        assert set(relationships) >= {"user", "anime", "manga", "media"}
        assert relationships["media"]["links"] == {
            "self": f"{base}/library-entries/{entry['id']}/relationships/media",
            "related": f"{base}/library-entries/{entry['id']}/media",
        }
        assert "data" not in relationships["user"]
        assert "data" in relationships["anime"]
    assert {"planned", "current", "completed", "onHold", "dropped"} == set(
        body["meta"]["statusCounts"]
    )


def test_meta_counts_ignore_the_status_filter(get, token):
    everything = get("/library-entries", token(1), **{"filter[user_id]": "1001"}).json()["meta"]
    completed = get(
        "/library-entries", token(1), **{"filter[user_id]": "1001", "filter[status]": "completed"}
    ).json()
    assert completed["meta"]["statusCounts"] == everything["statusCounts"]
    assert completed["meta"]["count"] == everything["statusCounts"]["completed"]
    assert {e["attributes"]["status"] for e in completed["data"]} == {"completed"}
    assert sum(everything["statusCounts"].values()) == everything["count"]


def test_status_filter_takes_a_comma_list_in_snake_case(get, token):
    body = get(
        "/library-entries",
        token(1),
        **{"filter[user_id]": "1001", "filter[status]": "on_hold,dropped", "page[limit]": "100"},
    ).json()
    assert {e["attributes"]["status"] for e in body["data"]} == {"on_hold", "dropped"}


def test_pagination_links_follow_the_offset_paginator(sandbox, get, token):
    # 43 entries with limit 40 -> the last page starts at 3, not at 40 (docs/kitsu-api.md §4.3).
    store = sandbox.store
    entries = store.entries_by_user[1001]
    keep = {e.id for e in entries[:43]}
    with store.lock:
        for entry in list(entries):
            if entry.id not in keep:
                store.delete_entry(entry)
        for entry in entries:
            entry.private = False
        store.library_changed(1001)  # set directly, not through a write: drop cached listings
    query = {"filter[user_id]": "1001", "page[limit]": "40"}
    first = get("/library-entries", token(1), **query).json()
    assert first["meta"]["count"] == 43
    assert set(first["links"]) == {"first", "next", "last"}
    assert offset_of(first["links"]["last"]) == 3
    assert offset_of(first["links"]["next"]) == 40
    second = get("/library-entries", token(1), **query, **{"page[offset]": "40"}).json()
    assert len(second["data"]) == 3
    assert set(second["links"]) == {"first", "prev", "last"}
    assert offset_of(second["links"]["prev"]) == 0
    middle = get("/library-entries", token(1), **query, **{"page[offset]": "10"}).json()
    assert offset_of(middle["links"]["prev"]) == 0


def test_links_repeat_the_query_sorted_and_percent_encoded(sandbox, get):
    body = get(
        "/library-entries",
        **{
            "include": "anime",
            "filter[user_id]": "1001",
            "filter[kind]": "anime",
            "page[limit]": "1",
        },
    ).json()
    base = (
        f"{sandbox.api_url}/library-entries?filter%5Bkind%5D=anime&filter%5Buser_id%5D=1001"
        "&include=anime&page%5Blimit%5D=1&page%5Boffset%5D="
    )
    count = body["meta"]["count"]
    assert body["links"] == {
        "first": f"{base}0",
        "next": f"{base}1",
        "last": f"{base}{count - 1}",
    }


def test_following_next_links_reaches_every_entry_once(get, token):
    url = "/library-entries"
    query = {"filter[user_id]": "1001", "page[limit]": "7"}
    body = get(url, token(1), **query).json()
    seen = [e["id"] for e in body["data"]]
    import requests

    headers = {"Authorization": f"Bearer {token(1)}"}
    while "next" in body["links"]:
        body = requests.get(body["links"]["next"], headers=headers, timeout=10).json()
        seen += [e["id"] for e in body["data"]]
    assert len(seen) == len(set(seen)) == body["meta"]["count"]
    assert seen == sorted(seen, key=int)


@pytest.mark.parametrize(("limit", "status"), [("500", 200), ("501", 400)])
def test_library_page_limit_is_500(get, limit, status):
    response = get("/library-entries", **{"filter[user_id]": "1001", "page[limit]": limit})
    assert response.status_code == status
    if status == 400:
        assert response.json()["errors"][0]["detail"] == "Limit exceeds maximum page size of 500."


def test_kind_filter_leaves_out_manga(get, token):
    everything = get(
        "/library-entries", token(1), **{"filter[user_id]": "1001", "page[limit]": "500"}
    ).json()
    anime_only = get(
        "/library-entries",
        token(1),
        **{"filter[user_id]": "1001", "filter[kind]": "anime", "page[limit]": "500"},
    ).json()
    manga = [e for e in everything["data"] if e["relationships"]["manga"].get("data") is None]
    assert anime_only["meta"]["count"] < everything["meta"]["count"]
    assert manga
    with_media = get(
        "/library-entries",
        token(1),
        **{
            "filter[user_id]": "1001",
            "filter[kind]": "anime",
            "include": "media",
            "page[limit]": "500",
        },
    ).json()
    included_types = {r["type"] for r in with_media["included"]}
    assert included_types == {"anime"}


def test_include_anime_mappings_links_entries_to_their_ids(get, token):
    body = get(
        "/library-entries",
        token(1),
        **{"filter[user_id]": "1001", "include": "anime.mappings", "page[limit]": "500"},
    ).json()
    included = {(r["type"], r["id"]): r for r in body["included"]}
    anime_entries = [e for e in body["data"] if e["relationships"]["anime"]["data"] is not None]
    assert anime_entries
    for entry in anime_entries:
        anime = included[("anime", entry["relationships"]["anime"]["data"]["id"])]
        for ref in anime["relationships"]["mappings"]["data"]:
            assert ("mappings", ref["id"]) in included
    assert any(
        included[("anime", e["relationships"]["anime"]["data"]["id"])]["relationships"]["mappings"][
            "data"
        ]
        == []
        for e in anime_entries
    )
    types = [r["type"] for r in body["included"]]
    assert types == sorted(types, key=lambda t: types.index(t))  # grouped by type


def test_include_user_and_media(get, token):
    body = get(
        "/library-entries",
        token(1),
        **{"filter[user_id]": "1001", "include": "user,media", "page[limit]": "500"},
    ).json()
    kinds = Counter(r["type"] for r in body["included"])
    assert kinds["users"] == 1
    assert kinds["manga"] >= 1
    assert kinds["anime"] >= 1


def test_filters_by_anime_id_and_id_and_since(sandbox, get, token):
    entry = sandbox.store.entries_by_user[1001][0]
    by_anime = get(
        "/library-entries",
        token(1),
        **{"filter[user_id]": "1001", "filter[animeId]": str(entry.media_id)},
    ).json()
    assert [e["id"] for e in by_anime["data"]] == [str(entry.id)]
    by_id = get("/library-entries", token(1), **{"filter[id]": str(entry.id)}).json()
    assert [e["id"] for e in by_id["data"]] == [str(entry.id)]
    newest = max(sandbox.store.entries_by_user[1001], key=lambda e: e.updated_at)
    stamp = get(f"/library-entries/{newest.id}", token(1)).json()["data"]["attributes"]["updatedAt"]
    since = get(
        "/library-entries", token(1), **{"filter[user_id]": "1001", "filter[since]": stamp}
    ).json()
    assert [e["id"] for e in since["data"]] == [str(newest.id)]


def test_an_unknown_library_filter_is_400_code_102(get):
    response = get("/library-entries", **{"filter[score]": "5"})
    assert response.json()["errors"][0]["code"] == "102"


def test_sort_by_progressed_at_descending_puts_nulls_last(get, token):
    body = get(
        "/library-entries",
        token(1),
        **{"filter[user_id]": "1001", "sort": "status,-progressed_at", "page[limit]": "500"},
    ).json()
    order = {"current": 1, "planned": 2, "completed": 3, "on_hold": 4, "dropped": 5}
    statuses = [order[e["attributes"]["status"]] for e in body["data"]]
    assert statuses == sorted(statuses)


class TestVisibility:
    def entries(self, get, viewer):
        return get(
            "/library-entries", viewer, **{"filter[user_id]": "1001", "page[limit]": "500"}
        ).json()

    def test_the_owner_sees_private_and_r18_entries(self, sandbox, get, token):
        own = self.entries(get, token(1))
        assert own["meta"]["count"] == len(sandbox.store.entries_by_user[1001])
        assert any(e["attributes"]["private"] for e in own["data"])

    def test_anonymous_callers_see_no_private_or_r18_entries(self, sandbox, get):
        visible = {e["id"] for e in self.entries(get, None)["data"]}
        for entry in sandbox.store.entries_by_user[1001]:
            assert (str(entry.id) in visible) == (not entry.private and not entry.nsfw)

    def test_another_user_with_the_sfw_filter_sees_neither(self, sandbox, get, token):
        visible = {e["id"] for e in self.entries(get, token(2))["data"]}
        for entry in sandbox.store.entries_by_user[1001]:
            assert (str(entry.id) in visible) == (not entry.private and not entry.nsfw)

    def test_another_adult_user_sees_r18_but_not_private(self, sandbox, get, token):
        visible = {e["id"] for e in self.entries(get, token(3))["data"]}
        assert any(e.nsfw and str(e.id) in visible for e in sandbox.store.entries_by_user[1001])
        for entry in sandbox.store.entries_by_user[1001]:
            assert (str(entry.id) in visible) == (not entry.private)

    def test_a_private_entry_is_404_for_others(self, sandbox, get, token):
        private = next(e for e in sandbox.store.entries_by_user[1001] if e.private)
        assert get(f"/library-entries/{private.id}", token(1)).status_code == 200
        for viewer in (None, token(3)):
            response = get(f"/library-entries/{private.id}", viewer)
            assert response.status_code == 404
            assert response.json()["errors"][0]["title"] == "Record not found"


def test_entry_related_anime_endpoint(sandbox, get, token):
    entry = next(e for e in sandbox.store.entries_by_user[1001] if e.kind == "anime")
    body = get(f"/library-entries/{entry.id}/anime", token(1)).json()
    assert body["data"]["id"] == str(entry.media_id)
    linkage = get(f"/library-entries/{entry.id}/relationships/anime", token(1)).json()
    assert linkage["data"] == {"type": "anime", "id": str(entry.media_id)}
