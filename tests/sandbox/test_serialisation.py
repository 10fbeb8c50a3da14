"""Response bodies stay byte for byte what the sandbox answered before its serialiser changed.

`serialisation_digests.json` holds the SHA-256 and length of each body below, captured from
the dict-and-json.dumps serialiser (commit d5f568b) on the same deterministic state (fixed seed
and clock, in-process WSGI). To recapture after a deliberate change of output:
`.venv/bin/python -m tests.sandbox.test_serialisation --write`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.test import Client

from kitsu_sync.sandbox import SandboxConfig, create_app

DIGESTS = Path(__file__).with_name("serialisation_digests.json")
JSONAPI = "application/vnd.api+json"
SYNC_QUERY = {
    "filter[userId]": "1001",
    "filter[kind]": "anime",
    "include": "anime,anime.mappings",
    "page[limit]": "500",
    "page[offset]": "0",
    "sort": "updatedAt",
}


def served_bodies() -> Iterator[tuple[str, int, bytes]]:
    """(case name, status, body) for reads, writes and reads after writes, in this order."""
    config = SandboxConfig(users=3, entries=120, clock=lambda: 1_750_000_000.0)
    app = create_app(config)
    client = Client(app)
    tokens = {}
    for index in (1, 2):
        credential = app.store.credentials()[index - 1]
        tokens[index] = client.post(
            "/api/oauth/token",
            data={
                "grant_type": "password",
                "username": credential.email,
                "password": credential.password,
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            },
        ).get_json()["access_token"]

    def call(name, path, params=None, *, method="GET", user=1, body=None):
        headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
        data = None
        if body is not None:
            headers.update({"Content-Type": JSONAPI, "Accept": JSONAPI})
            data = json.dumps(body)
        response = client.open(
            f"/api/edge{path}",
            method=method,
            query_string=list((params or {}).items()),
            headers=headers,
            data=data,
        )
        return name, response.status_code, response.data

    library = app.store.entries_by_user[1001]
    middle = sorted(e.updated_at for e in library)[len(library) // 2]
    since_iso = datetime.fromtimestamp(middle // 1000, UTC).isoformat()
    entry = next(e for e in library if e.kind == "anime" and not e.private)
    private = next(e for e in library if e.private)
    taken = {e.media_id for e in library if e.kind == "anime"}
    fresh = next(a for a in app.store.anime[:200] if a.id not in taken and not a.nsfw)

    yield call("sync page", "/library-entries", SYNC_QUERY)
    yield call("sync page of 20", "/library-entries", {**SYNC_QUERY, "page[limit]": "20"})
    yield call(
        "sync page offset",
        "/library-entries",
        {**SYNC_QUERY, "page[limit]": "20", "page[offset]": "40"},
    )
    yield call("anonymous", "/library-entries", SYNC_QUERY, user=None)
    yield call("other viewer", "/library-entries", SYNC_QUERY, user=2)
    yield call("since", "/library-entries", {**SYNC_QUERY, "filter[since]": since_iso})
    yield call(
        "status and sort",
        "/library-entries",
        {
            "filter[user_id]": "1001",
            "filter[status]": "current,on_hold",
            "sort": "-progress,id",
            "page[limit]": "50",
        },
    )
    yield call(
        "sparse fields and many includes",
        "/library-entries",
        {
            "filter[userId]": "1001",
            "include": "anime,user,media,anime.genres,anime.categories,manga,anime.mappings.item",
            "fields[anime]": "canonicalTitle,titles,mappings,genres",
            "fields[libraryEntries]": "status,progress,anime,user",
            "fields[mappings]": "externalId",
            "page[limit]": "30",
        },
    )
    yield call(
        "two users by title",
        "/library-entries",
        {
            "filter[userId]": "1001,1002",
            "sort": "anime.titles.canonical,-updatedAt",
            "include": "media",
            "page[limit]": "100",
            "page[offset]": "7",
        },
    )
    yield call("by anime", "/library-entries", {"filter[animeId]": str(entry.media_id)})
    yield call(
        "manga kind", "/library-entries", {"filter[userId]": "1001", "filter[kind]": "manga"}
    )
    yield call("bad since", "/library-entries", {"filter[userId]": "1001", "filter[since]": "x"})
    yield call("bad sort", "/library-entries", {"filter[userId]": "1001", "sort": "nope"})
    yield call(
        "anime search",
        "/anime",
        {"filter[text]": "season", "include": "mappings,genres", "page[limit]": "20"},
    )
    yield call("anime sorted", "/anime", {"sort": "-averageRating", "page[limit]": "20"})
    yield call("anime show", "/anime/1", {"include": "mappings,categories,genres"})
    yield call("manga show", "/manga/3", {"include": "genres"})
    yield call("trending", "/trending/anime", {"limit": "15"})
    yield call("user library", "/users/1001/library-entries", {"include": "anime.mappings"})
    yield call("entry show", f"/library-entries/{entry.id}", {"include": "anime.mappings,user"})
    yield call("private entry anonymous", f"/library-entries/{private.id}", user=None)
    yield call(
        "mappings",
        "/mappings",
        {
            "filter[externalSite]": "myanimelist/anime",
            "filter[externalId]": "2003,1",
            "include": "item",
        },
    )
    yield call("mapping item", "/mappings/2/item")
    yield call("anime mappings", "/anime/1/mappings", {"include": "item"})
    yield call("relationship", "/anime/1/relationships/mappings")
    yield call("genres", "/genres")
    yield call("categories", "/categories", {"include": "parent"})
    yield call("self", "/users", {"filter[self]": "true"})
    yield call("user show", "/users/1001", {"include": "libraryEntries"})

    patch = {
        "data": {
            "type": "libraryEntries",
            "id": str(entry.id),
            "attributes": {"progress": 1, "notes": "A & B <i>\u2028 ünï"},
        }
    }
    yield call(
        "patch", f"/library-entries/{entry.id}", {"include": "anime"}, method="PATCH", body=patch
    )
    yield call("sync page after patch", "/library-entries", SYNC_QUERY)
    yield call("since after patch", "/library-entries", {**SYNC_QUERY, "filter[since]": since_iso})
    create = {
        "data": {
            "type": "libraryEntries",
            "attributes": {"status": "planned"},
            "relationships": {
                "user": {"data": {"type": "users", "id": "1001"}},
                "media": {"data": {"type": "anime", "id": str(fresh.id)}},
            },
        }
    }
    yield call("create", "/library-entries", {"include": "anime"}, method="POST", body=create)
    yield call("sync page after create", "/library-entries", SYNC_QUERY)
    yield call("delete", f"/library-entries/{entry.id}", method="DELETE")
    yield call("sync page after delete", "/library-entries", SYNC_QUERY)
    yield call("status after delete", "/library-entries", {"filter[userId]": "1001"})


def digests() -> dict[str, list]:
    return {
        name: [status, len(body), hashlib.sha256(body).hexdigest()]
        for name, status, body in served_bodies()
    }


def test_bodies_are_byte_for_byte_those_of_the_dict_serialiser():
    expected = json.loads(DIGESTS.read_text())
    served = digests()
    assert list(served) == list(expected)
    changed = [name for name in expected if served[name] != expected[name]]
    assert not changed, f"bodies differ from the captured ones: {changed}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    DIGESTS.write_text(json.dumps(digests(), indent=1) + "\n")
