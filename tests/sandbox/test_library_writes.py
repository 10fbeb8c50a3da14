"""POST/PATCH/DELETE /library-entries: headers, policy, validation and side effects (KS rules)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

JSONAPI = "application/vnd.api+json"


class Writer:
    """Sends library-entry writes to a sandbox as a Kitsu client would."""

    def __init__(self, sandbox, token: str | None) -> None:
        self.sandbox = sandbox
        self.token = token

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"Content-Type": JSONAPI, "Accept": JSONAPI}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra)
        return headers

    def create(self, anime_id: int, user_id: str = "1001", headers=None, **attributes):
        body = {
            "data": {
                "type": "libraryEntries",
                "attributes": attributes,
                "relationships": {
                    "user": {"data": {"type": "users", "id": user_id}},
                    "media": {"data": {"type": "anime", "id": str(anime_id)}},
                },
            }
        }
        return self.send("POST", "/library-entries", body, headers)

    def update(self, entry_id, headers=None, **attributes):
        body = {"data": {"type": "libraryEntries", "id": str(entry_id), "attributes": attributes}}
        return self.send("PATCH", f"/library-entries/{entry_id}", body, headers)

    def send(self, method: str, path: str, body, headers=None) -> requests.Response:
        return requests.request(
            method,
            f"{self.sandbox.api_url}{path}",
            data=json.dumps(body),
            headers=headers or self.headers(),
            timeout=10,
        )


@pytest.fixture
def demo(sandbox, token) -> Writer:
    return Writer(sandbox, token(1))


def anime_not_in_library(sandbox, *, known_count: bool = True, user_id: int = 1001):
    taken = {e.media_id for e in sandbox.store.entries_by_user[user_id] if e.kind == "anime"}
    return next(
        a
        for a in sandbox.store.anime
        if a.id not in taken
        and not a.nsfw
        and a.status == "finished"
        and (a.episode_count is not None) == known_count
        and (a.episode_count or 0) > 3
    )


def attributes(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()["data"]["attributes"]


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# --- headers -------------------------------------------------------------------------------


def test_post_without_the_jsonapi_content_type_is_415(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    response = demo.create(anime.id, headers=demo.headers(**{"Content-Type": "application/json"}))
    assert response.status_code == 415
    assert response.json() == {
        "errors": [
            {
                "title": "Unsupported media type",
                "detail": "All requests that create or update must use the "
                "'application/vnd.api+json' Content-Type. This request specified "
                "'application/json'.",
                "code": "415",
                "status": "415",
            }
        ]
    }


def test_a_charset_parameter_on_the_content_type_is_tolerated(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    headers = demo.headers(**{"Content-Type": f"{JSONAPI}; charset=utf-8"})
    assert demo.create(anime.id, headers=headers, status="planned").status_code == 201


def test_accept_application_json_alone_is_406(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    response = demo.create(anime.id, headers=demo.headers(Accept="application/json"))
    assert response.status_code == 406
    assert response.json()["errors"][0]["title"] == "Not acceptable"
    for accept in ("*/*", f"application/json, {JSONAPI}"):
        ok = demo.create(anime.id, headers=demo.headers(Accept=accept), status="planned")
        assert ok.status_code in (201, 422)


def test_created_entries_come_back_as_201_jsonapi(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    response = demo.create(anime.id, status="current", progress=1, ratingTwenty=16)
    assert response.status_code == 201
    assert response.headers["Content-Type"] == JSONAPI
    entry = response.json()["data"]
    assert entry["type"] == "libraryEntries"
    assert entry["attributes"]["ratingTwenty"] == 16
    assert entry["attributes"]["rating"] == "4.0"
    fetched = requests.get(
        f"{sandbox.api_url}/library-entries/{entry['id']}", headers=demo.headers(), timeout=10
    )
    assert fetched.json()["data"]["attributes"] == entry["attributes"]


# --- policy --------------------------------------------------------------------------------


def forbidden(action: str, verb: str) -> dict:
    return {
        "errors": [
            {
                "title": f"{action} Forbidden",
                "detail": f"You don't have permission to {verb} this library entry.",
                "code": "403",
                "status": "403",
            }
        ]
    }


def test_writes_without_a_token_are_forbidden(sandbox):
    anonymous = Writer(sandbox, None)
    anime = anime_not_in_library(sandbox)
    assert anonymous.create(anime.id, status="planned").json() == forbidden("Create", "create")
    entry = next(e for e in sandbox.store.entries_by_user[1001] if not e.private and not e.nsfw)
    response = anonymous.update(entry.id, progress=1)
    assert response.status_code == 403
    assert response.json() == forbidden("Update", "update")
    deleted = anonymous.send("DELETE", f"/library-entries/{entry.id}", None)
    assert deleted.json() == forbidden("Destroy", "destroy")


def test_writing_someone_elses_entry_is_forbidden(sandbox, token):
    other = Writer(sandbox, token(3))
    entry = next(e for e in sandbox.store.entries_by_user[1001] if not e.private)
    assert other.update(entry.id, progress=0).status_code == 403
    anime = anime_not_in_library(sandbox)
    assert other.create(anime.id, user_id="1001", status="planned").status_code == 403


def test_policy_runs_before_validation(sandbox):
    anime = anime_not_in_library(sandbox)
    response = Writer(sandbox, None).create(anime.id, status="planned", ratingTwenty=99)
    assert response.status_code == 403


def test_another_users_private_entry_is_404(sandbox, token):
    private = next(e for e in sandbox.store.entries_by_user[1001] if e.private)
    assert Writer(sandbox, token(3)).update(private.id, progress=1).status_code == 404


# --- request errors ------------------------------------------------------------------------


def test_patch_without_an_id_is_400_code_109(sandbox, demo):
    entry = sandbox.store.entries_by_user[1001][0]
    body = {"data": {"type": "libraryEntries", "attributes": {"progress": 1}}}
    response = demo.send("PATCH", f"/library-entries/{entry.id}", body)
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "title": "A key is required",
        "detail": "The resource object does not contain a key.",
        "code": "109",
        "status": "400",
    }


def test_patch_with_another_id_is_400_code_110(sandbox, demo):
    entry = sandbox.store.entries_by_user[1001][0]
    body = {"data": {"type": "libraryEntries", "id": "1", "attributes": {"progress": 1}}}
    error = demo.send("PATCH", f"/library-entries/{entry.id}", body).json()["errors"][0]
    assert (error["title"], error["code"], error["status"]) == (
        "Key is not included in URL",
        "110",
        "400",
    )


def test_an_unknown_attribute_is_400_param_not_allowed(sandbox, demo):
    entry = sandbox.store.entries_by_user[1001][0]
    response = demo.update(entry.id, score=80)
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "title": "Param not allowed",
        "detail": "score is not allowed.",
        "code": "105",
        "status": "400",
    }


def test_an_invalid_status_value_is_a_500(sandbox, demo):
    entry = sandbox.store.entries_by_user[1001][0]
    assert demo.update(entry.id, status="watching").status_code == 500


def test_library_entries_type_may_be_dasherised(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    body = {
        "data": {
            "type": "library-entries",
            "attributes": {"status": "planned"},
            "relationships": {
                "user": {"data": {"type": "users", "id": "1001"}},
                "anime": {"data": {"type": "anime", "id": str(anime.id)}},
            },
        }
    }
    assert demo.send("POST", "/library-entries", body).status_code == 201


def test_linkage_with_extra_keys_is_an_invalid_links_object(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    body = {
        "data": {
            "type": "libraryEntries",
            "attributes": {"status": "planned"},
            "relationships": {
                "user": {"data": {"type": "users", "id": "1001", "name": "demo"}},
                "media": {"data": {"type": "anime", "id": str(anime.id)}},
            },
        }
    }
    assert demo.send("POST", "/library-entries", body).json()["errors"][0]["code"] == "115"


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [(1, "must be greater than or equal to 2"), (21, "must be less than or equal to 20")],
)
def test_rating_twenty_outside_2_to_20_is_422_on_rating(sandbox, demo, value, message):
    entry = sandbox.store.entries_by_user[1001][0]
    response = demo.update(entry.id, ratingTwenty=value)
    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "title": message,
                "detail": f"rating - {message}",
                "code": "100",
                "source": {"pointer": "/data/attributes/rating"},
                "status": "422",
            }
        ]
    }


def test_rating_twenty_null_clears_the_rating(sandbox, demo):
    entry = next(e for e in sandbox.store.entries_by_user[1001] if e.rating_twenty is not None)
    cleared = attributes(demo.update(entry.id, ratingTwenty=None))
    assert (cleared["ratingTwenty"], cleared["rating"]) == (None, "0.0")


def test_reconsume_count_over_50_says_go_outside(sandbox, demo):
    entry = sandbox.store.entries_by_user[1001][0]
    error = demo.update(entry.id, reconsumeCount=51).json()["errors"][0]
    assert error["detail"] == "reconsumeCount - just... go outside"
    assert error["source"] == {"pointer": "/data/attributes/reconsumeCount"}


def test_progress_over_the_episode_count_is_422(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    response = demo.create(anime.id, status="current", progress=anime.episode_count + 1)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["detail"] == "progress - cannot exceed length of media"
    assert error["source"] == {"pointer": "/data/attributes/progress"}


def test_unknown_episode_counts_cap_progress_at_a_reasonable_number(sandbox, demo):
    taken = {e.media_id for e in sandbox.store.entries_by_user[1001]}
    ongoing = next(
        a
        for a in sandbox.store.anime
        if a.episode_count is None and a.start_day is not None and not a.nsfw and a.id not in taken
    )
    cap, _ = sandbox.store.progress_cap(ongoing)
    assert cap >= 50
    assert demo.create(ongoing.id, status="current", progress=cap).status_code == 201
    entry_id = next(e.id for e in sandbox.store.entries_by_user[1001] if e.media_id == ongoing.id)
    error = demo.update(entry_id, progress=cap + 1).json()["errors"][0]
    assert error["detail"] == "progress - is rather unreasonably high"


def test_a_second_entry_for_the_same_anime_is_422(sandbox, demo):
    entry = next(e for e in sandbox.store.entries_by_user[1001] if e.kind == "anime")
    response = demo.create(entry.media_id, status="planned")
    assert response.status_code == 422
    assert response.json()["errors"][0]["detail"] == "anime_id has already been taken"


# --- side effects --------------------------------------------------------------------------


def test_progress_reaching_the_episode_count_completes_the_entry(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    created = demo.create(anime.id, status="current", progress=1).json()["data"]
    assert created["attributes"]["startedAt"] is not None
    assert created["attributes"]["finishedAt"] is None
    done = attributes(demo.update(created["id"], progress=anime.episode_count))
    assert done["status"] == "completed"
    assert done["finishedAt"] is not None
    assert done["progressedAt"] == done["updatedAt"]


def test_completing_sets_progress_to_the_episode_count(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    created = demo.create(anime.id, status="current", progress=1).json()["data"]
    done = attributes(demo.update(created["id"], status="completed"))
    assert done["progress"] == anime.episode_count
    assert done["finishedAt"] is not None


def test_progress_on_a_planned_entry_starts_it(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    created = demo.create(anime.id, status="planned").json()["data"]
    assert created["attributes"]["startedAt"] is None
    assert created["attributes"]["progressedAt"] is not None
    started = attributes(demo.update(created["id"], progress=2))
    assert started["status"] == "current"
    assert started["startedAt"] is not None


def test_started_at_is_kept_on_later_changes(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    created = demo.create(anime.id, status="current", progress=1).json()["data"]
    started = created["attributes"]["startedAt"]
    paused = attributes(demo.update(created["id"], status="on_hold"))
    resumed = attributes(demo.update(created["id"], status="current"))
    assert paused["startedAt"] == resumed["startedAt"] == started


def test_explicit_dates_win_over_the_automatic_ones(sandbox, demo):
    anime = anime_not_in_library(sandbox)
    created = demo.create(anime.id, status="current", startedAt="2024-01-02T00:00:00.000Z")
    assert attributes(created)["startedAt"] == "2024-01-02T00:00:00.000Z"


def test_notes_only_change_leaves_progressed_at_alone_but_bumps_updated_at(sandbox, demo):
    entry = next(
        e
        for e in sandbox.store.entries_by_user[1001]
        if e.status == "current" and e.progressed_at is not None
    )
    before = requests.get(
        f"{sandbox.api_url}/library-entries/{entry.id}", headers=demo.headers(), timeout=10
    ).json()["data"]["attributes"]
    after = attributes(demo.update(entry.id, notes="Ünïcode ✓ & <notes>"))
    assert after["notes"] == "Ünïcode ✓ & <notes>"
    assert after["progressedAt"] == before["progressedAt"]
    assert parse(after["updatedAt"]) > parse(before["updatedAt"])
    again = attributes(demo.update(entry.id, notes="again"))
    assert parse(again["updatedAt"]) > parse(after["updatedAt"])
    assert parse(again["updatedAt"]) <= datetime.now(UTC)


def test_rewatch_fields_round_trip(sandbox, demo):
    entry = next(e for e in sandbox.store.entries_by_user[1001] if e.status == "completed")
    rewatching = attributes(demo.update(entry.id, reconsuming=True, reconsumeCount=2))
    assert (rewatching["reconsuming"], rewatching["reconsumeCount"]) == (True, 2)


def test_deprecated_rating_writes_store_four_times_the_value(sandbox, demo):
    entry = sandbox.store.entries_by_user[1001][0]
    assert attributes(demo.update(entry.id, rating="4.5"))["ratingTwenty"] == 18


def test_delete_is_204_without_a_body_and_the_entry_is_gone(sandbox, demo):
    entry = sandbox.store.entries_by_user[1001][0]
    response = demo.send("DELETE", f"/library-entries/{entry.id}", None)
    assert response.status_code == 204
    assert response.content == b""
    gone = requests.get(
        f"{sandbox.api_url}/library-entries/{entry.id}", headers=demo.headers(), timeout=10
    )
    assert gone.status_code == 404


def test_reset_brings_back_the_seeded_library(sandbox, demo, get, token):
    before = get("/library-entries", token(1), **{"filter[user_id]": "1001"}).json()["meta"]
    entry = sandbox.store.entries_by_user[1001][0]
    demo.send("DELETE", f"/library-entries/{entry.id}", None)
    sandbox.reset()
    after = get("/library-entries", token(1), **{"filter[user_id]": "1001"}).json()["meta"]
    assert after == before
