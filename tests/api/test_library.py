"""The user's list over the API: read a page, add, edit, remove, and find anime on Kitsu."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kitsu_sync.models import LibraryEntry
from tests.api.support import KeyedClient, assert_problem
from tests.mapping_files import store_anime

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf(api: KeyedClient) -> list[LibraryEntry]:
    """Five entries of the API user: three watching, two completed."""
    rows = []
    for number, status in enumerate(["watching"] * 3 + ["completed"] * 2, start=1):
        anime = store_anime(number, episode_count=12, title=f"Show {number:02d}")
        rows.append(
            LibraryEntry.objects.create(
                user=api.user,
                anime=anime,
                status=status,
                progress=12 if status == "completed" else number,
            )
        )
    return rows


def test_the_list_is_paged_and_filtered_by_status(
    api: KeyedClient, shelf: list[LibraryEntry]
) -> None:
    first = api.get("/library?page_size=2").json()
    last = api.get("/library?page_size=2&page=3").json()
    completed = api.get("/library?status=completed").json()

    assert (first["count"], first["pages"], first["page"]) == (5, 3, 1)
    assert [e["title"] for e in first["results"]] == ["Show 01", "Show 02"]
    assert [e["title"] for e in last["results"]] == ["Show 05"]
    assert [e["kitsu_anime_id"] for e in completed["results"]] == [4, 5]
    entry = first["results"][0]
    assert (entry["status"], entry["progress"], entry["episode_count"]) == ("watching", 1, 12)
    assert entry["kitsu"]["state"] == "in_step"


@pytest.mark.parametrize("query", ["status=finished", "page=0", "page_size=101", "page_size=abc"])
def test_bad_list_parameters_are_422_naming_the_parameter(api: KeyedClient, query: str) -> None:
    body = assert_problem(api.get(f"/library?{query}"), 422)

    assert body["errors"][0]["field"].endswith(query.split("=")[0])


def test_another_users_entry_is_404_and_left_alone(
    api: KeyedClient, shelf: list[LibraryEntry], keyed: Callable[..., KeyedClient]
) -> None:
    stranger = keyed()

    assert_problem(stranger.get("/library/1"), 404)
    assert_problem(stranger.patch("/library/1", {"progress": 5}), 404)
    assert_problem(stranger.delete("/library/1"), 404)
    assert stranger.get("/library").json()["count"] == 0
    assert LibraryEntry.objects.get(user=api.user, anime__kitsu_id=1).progress == 1


def test_an_entry_is_edited_with_only_the_fields_sent(
    api: KeyedClient, shelf: list[LibraryEntry]
) -> None:
    response = api.patch(
        "/library/2",
        {"progress": 5, "score": 80, "notes": "good", "started_at": "2025-01-02T20:00:00Z"},
    )

    assert response.status_code == 200, response.content
    entry = response.json()
    assert (entry["progress"], entry["score"], entry["notes"], entry["status"]) == (
        5,
        80,
        "good",
        "watching",
    )
    assert entry["started_at"].startswith("2025-01-02T20:00:00")
    # Import only (the default): the change stays in Revenge, and the answer says so.
    assert entry["kitsu"]["state"] == "local"
    stored = LibraryEntry.objects.get(user=api.user, anime__kitsu_id=2)
    assert stored.local_updated_at is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"score": 101}, "score"),
        ({"progress": -1}, "progress"),
        ({"status": "finished"}, "status"),
        ({"rewatch_count": 99}, "rewatch_count"),
    ],
)
def test_an_invalid_value_is_422_naming_the_field(
    api: KeyedClient, shelf: list[LibraryEntry], body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(api.patch("/library/1", body), 422)

    assert problem["errors"][0]["field"] == field


def test_a_value_past_the_shows_episode_count_is_422(
    api: KeyedClient, shelf: list[LibraryEntry]
) -> None:
    problem = assert_problem(api.patch("/library/1", {"progress": 13}), 422)

    assert problem["field"] == "progress"
    assert "0 to 12" in problem["detail"]


def test_a_malformed_body_is_a_problem_not_a_crash(
    api: KeyedClient, shelf: list[LibraryEntry]
) -> None:
    response = api.client.patch(
        "/api/v1/library/1",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )

    assert response.status_code in (400, 422)
    assert response["Content-Type"] == "application/problem+json"


def test_adding_an_anime_is_201_then_200(api: KeyedClient) -> None:
    store_anime(9, episode_count=24, title="Show 09")

    first = api.post("/library", {"kitsu_anime_id": 9, "status": "watching"})
    again = api.post("/library", {"kitsu_anime_id": 9})

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["status"] == again.json()["status"] == "watching"


def test_removing_an_entry_is_204_then_404(api: KeyedClient, shelf: list[LibraryEntry]) -> None:
    assert api.delete("/library/3").status_code == 204
    assert_problem(api.delete("/library/3"), 404)
    assert not LibraryEntry.objects.filter(user=api.user, anime__kitsu_id=3).exists()


def test_anime_search_marks_what_is_in_the_list(api: KeyedClient, kitsu: Any) -> None:
    record = next(a for a in kitsu.store.anime if not a.nsfw and a.canonical_title)
    anime = store_anime(record.id, episode_count=record.episode_count, title=record.canonical_title)
    LibraryEntry.objects.create(user=api.user, anime=anime, status="watching")

    response = api.get(f"/anime/search?q={record.canonical_title}")

    assert response.status_code == 200, response.content
    found = {a["kitsu_id"]: a for a in response.json()}
    assert found[record.id]["in_list"] is True
    assert found[record.id]["title"] == record.canonical_title
    assert sum(a["in_list"] for a in found.values()) == 1


def test_anime_search_while_kitsu_is_down_is_502(
    api: KeyedClient, kitsu_at: Callable[..., Any], refused_url: str
) -> None:
    kitsu_at(api_url=refused_url, oauth_url=refused_url)

    assert_problem(api.get("/anime/search?q=bebop"), 502, "Kitsu")


def test_a_misspelt_field_is_422_not_silently_ignored(
    api: KeyedClient, shelf: list[LibraryEntry]
) -> None:
    problem = assert_problem(api.patch("/library/1", {"progres": 5}), 422)

    assert problem["errors"][0]["field"] == "progres"
    assert LibraryEntry.objects.get(user=api.user, anime__kitsu_id=1).progress == 1


def test_adding_an_anime_kitsu_does_not_have_is_404(api: KeyedClient, kitsu: Any) -> None:
    problem = assert_problem(api.post("/library", {"kitsu_anime_id": 99_999_999}), 404)

    assert "99999999" in problem["detail"]


def test_a_failure_inside_revenge_is_a_500_problem_not_a_debug_page(
    api: KeyedClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(entries: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("kitsu_sync.services.entries.standings", broken)

    problem = assert_problem(api.get("/library"), 500)
    assert "logs" in problem["detail"]
    assert "a bug" not in problem["detail"]
