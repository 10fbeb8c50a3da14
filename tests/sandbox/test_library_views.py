"""Cached library listings (`SandboxStore.library_view`): every write path shows in the next read.

Each test reads a listing first, so that it is cached, then writes, then reads it again.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
import requests
from werkzeug.test import Client

from kitsu_sync.sandbox import SandboxConfig, SandboxStore, create_app
from kitsu_sync.sandbox import store as store_module
from kitsu_sync.sandbox.store import LibraryView, entry_visible

JSONAPI = "application/vnd.api+json"
# What the sync sends (kitsu_api.client.iter_library_pages).
SYNC = {
    "filter[userId]": "1001",
    "filter[kind]": "anime",
    "include": "anime,anime.mappings",
    "page[limit]": "500",
    "sort": "updatedAt",
}


def write(sandbox, token: str, method: str, path: str, data: dict | None = None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": JSONAPI, "Accept": JSONAPI}
    response = requests.request(
        method,
        f"{sandbox.api_url}{path}",
        data=None if data is None else json.dumps({"data": data}),
        headers=headers,
        timeout=10,
    )
    assert response.status_code < 300, response.text
    return response


def patch(sandbox, token: str, entry_id: int | str, **attributes):
    data = {"type": "libraryEntries", "id": str(entry_id), "attributes": attributes}
    return write(sandbox, token, "PATCH", f"/library-entries/{entry_id}", data).json()["data"]


def create(sandbox, token: str, user_id: str, anime_id: int, **attributes):
    data = {
        "type": "libraryEntries",
        "attributes": {"status": "planned", **attributes},
        "relationships": {
            "user": {"data": {"type": "users", "id": user_id}},
            "anime": {"data": {"type": "anime", "id": str(anime_id)}},
        },
    }
    return write(sandbox, token, "POST", "/library-entries", data).json()["data"]


def ids(body: dict) -> list[str]:
    return [entry["id"] for entry in body["data"]]


def anime_outside(sandbox, user_id: int) -> int:
    taken = {e.media_id for e in sandbox.store.entries_by_user[user_id] if e.kind == "anime"}
    return next(a.id for a in sandbox.store.anime if a.id not in taken and not a.nsfw)


def test_a_patch_moves_the_entry_to_the_end_of_the_updated_at_listing(sandbox, get, token):
    demo = token(1)
    before = get("/library-entries", demo, **SYNC).json()
    first = before["data"][0]

    patch(sandbox, demo, first["id"], notes="moved to the end")

    after = get("/library-entries", demo, **SYNC).json()
    assert ids(after) == [*ids(before)[1:], first["id"]]
    assert after["data"][-1]["attributes"]["notes"] == "moved to the end"
    assert after["meta"]["count"] == before["meta"]["count"]


def test_a_patch_shows_in_the_since_listing(sandbox, get, token):
    demo = token(1)
    newest = max(e.updated_at for e in sandbox.store.entries_by_user[1001])
    since = datetime.fromtimestamp(newest / 1000 + 1, UTC).isoformat()
    query = {**SYNC, "filter[since]": since}
    assert get("/library-entries", demo, **query).json()["meta"]["count"] == 0
    entry = next(e for e in sandbox.store.entries_by_user[1001] if e.kind == "anime")

    patch(sandbox, demo, entry.id, notes="changed since")

    body = get("/library-entries", demo, **query).json()
    assert ids(body) == [str(entry.id)]
    assert body["data"][0]["attributes"]["notes"] == "changed since"
    assert body["meta"]["count"] == 1
    assert sum(body["meta"]["statusCounts"].values()) == 1


def test_a_status_change_updates_the_status_counts_and_the_status_filter(sandbox, get, token):
    demo = token(1)
    query = {"filter[userId]": "1001", "filter[status]": "dropped", "page[limit]": "500"}
    before = get("/library-entries", demo, **query).json()
    entry = next(
        e for e in sandbox.store.entries_by_user[1001] if e.status == "current" and not e.private
    )

    patch(sandbox, demo, entry.id, status="dropped")

    after = get("/library-entries", demo, **query).json()
    assert str(entry.id) in ids(after)
    assert after["meta"]["count"] == before["meta"]["count"] + 1
    counts_before, counts_after = before["meta"]["statusCounts"], after["meta"]["statusCounts"]
    assert counts_after["dropped"] == counts_before["dropped"] + 1
    assert counts_after.get("current", 0) == counts_before["current"] - 1


def test_a_new_entry_appears_at_the_end_of_the_cached_listing(sandbox, get, token):
    demo = token(1)
    before = get("/library-entries", demo, **SYNC).json()

    created = create(sandbox, demo, "1001", anime_outside(sandbox, 1001))

    after = get("/library-entries", demo, **SYNC).json()
    assert ids(after) == [*ids(before), created["id"]]
    assert after["meta"]["statusCounts"]["planned"] == before["meta"]["statusCounts"]["planned"] + 1


def test_a_deleted_entry_leaves_the_cached_listing(sandbox, get, token):
    demo = token(1)
    before = get("/library-entries", demo, **SYNC).json()
    gone = before["data"][3]["id"]

    write(sandbox, demo, "DELETE", f"/library-entries/{gone}")

    after = get("/library-entries", demo, **SYNC).json()
    assert ids(after) == [i for i in ids(before) if i != gone]
    assert after["meta"]["count"] == before["meta"]["count"] - 1


def test_making_an_entry_private_hides_it_from_the_cached_anonymous_listing(sandbox, get, token):
    demo = token(1)
    entry = next(e for e in sandbox.store.entries_by_user[1001] if not e.private and not e.nsfw)
    assert str(entry.id) in ids(get("/library-entries", **SYNC).json())
    assert str(entry.id) in ids(get("/library-entries", demo, **SYNC).json())

    patch(sandbox, demo, entry.id, private=True)

    assert str(entry.id) not in ids(get("/library-entries", **SYNC).json())
    assert str(entry.id) in ids(get("/library-entries", demo, **SYNC).json())


def test_a_listing_across_users_sees_a_write_by_any_user(sandbox, get, token):
    anime_id = anime_outside(sandbox, 1002)
    query = {"filter[animeId]": str(anime_id), "page[limit]": "500"}
    before = get("/library-entries", **query).json()

    created = create(sandbox, token(2), "1002", anime_id)

    assert ids(get("/library-entries", **query).json()) == sorted(
        [*ids(before), created["id"]], key=int
    )


def test_a_reset_brings_back_the_seeded_listing(sandbox, get, token):
    demo = token(1)
    seeded = get("/library-entries", demo, **SYNC).content
    patch(sandbox, demo, sandbox.store.entries_by_user[1001][0].id, notes="gone after reset")
    assert get("/library-entries", demo, **SYNC).content != seeded

    sandbox.reset()

    assert get("/library-entries", token(1), **SYNC).content == seeded


def note_every_entry(
    sandbox, token: str, entry_ids: list[int], writer: int, failures: list[str]
) -> None:
    """One writer thread: a note naming the writer and the pass on each entry in turn."""
    for n, entry_id in enumerate(entry_ids):
        try:
            patch(sandbox, token, entry_id, notes=f"writer {writer} pass {n}")
        except (AssertionError, requests.RequestException) as error:
            failures.append(str(error))


def read_first_pages(get, token: str, failures: list[str]) -> None:
    """One reader thread: the sync's first page, ten times; it must be sorted and add up."""
    for _ in range(10):
        body = get("/library-entries", token, **{**SYNC, "page[limit]": "20"}).json()
        stamps = [e["attributes"]["updatedAt"] for e in body["data"]]
        if stamps != sorted(stamps):
            failures.append(f"page out of updatedAt order: {stamps}")
        if sum(body["meta"]["statusCounts"].values()) != body["meta"]["count"]:
            failures.append(f"counts disagree: {body['meta']}")


def test_listings_stay_consistent_under_concurrent_writes(sandbox, get, token):
    demo = token(1)
    entries = [e.id for e in sandbox.store.entries_by_user[1001] if e.kind == "anime"][:20]
    failures: list[str] = []

    threads = [
        threading.Thread(target=note_every_entry, args=(sandbox, demo, entries, n, failures))
        for n in range(2)
    ]
    threads += [
        threading.Thread(target=read_first_pages, args=(get, demo, failures)) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures

    listed = get("/library-entries", demo, **SYNC).json()["data"]
    viewer = sandbox.store.user_by_id(1001)
    store_order = sorted(
        (
            e
            for e in sandbox.store.entries_by_user[1001]
            if e.kind == "anime" and entry_visible(e, viewer)
        ),
        key=lambda e: e.updated_at,
    )
    assert ids({"data": listed}) == [str(e.id) for e in store_order]
    notes = {e["id"]: e["attributes"]["notes"] for e in listed}
    for entry_id in entries:
        assert notes[str(entry_id)] == sandbox.store.entry_by_id(entry_id).notes


def test_the_listing_cache_is_bounded_by_count_and_by_entries(monkeypatch):
    store = SandboxStore(SandboxConfig(users=2, entries=30))
    monkeypatch.setattr(store_module, "LIBRARY_VIEW_LIMIT", 3)
    monkeypatch.setattr(store_module, "LIBRARY_VIEW_ENTRY_LIMIT", 70)
    library = store.entries_by_user[1001]
    for n in range(6):
        store.library_view(("count", n), [1001], lambda: LibraryView(library[:10], {}))
    assert list(store.library_views) == [("count", 3), ("count", 4), ("count", 5)]
    for n in range(4):
        store.library_view(("size", n), [1001], lambda: LibraryView(library[:30], {}))
    assert list(store.library_views) == [("size", 2), ("size", 3)]
    assert store.library_view_size == 60


@pytest.mark.parametrize("limit", [1, 50_000])
def test_a_full_attribute_cache_changes_no_body(monkeypatch, limit):
    def pages() -> list[bytes]:
        client = Client(create_app(SandboxConfig(users=1, entries=80)))
        query = {"filter[userId]": "1001", "include": "anime.mappings,anime.genres"}
        path = "/api/edge/library-entries"
        return [
            client.get(path, query_string={**query, "page[offset]": str(n)}).data
            for n in range(0, 80, 10)
        ]

    unbounded = pages()
    monkeypatch.setattr(store_module, "ATTRIBUTE_JSON_LIMIT", limit)
    assert pages() == unbounded
