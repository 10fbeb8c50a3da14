"""POST /api/v1/scrobble: a watched episode named by any id the mapping data knows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from kitsu_sync.models import IdempotentRequest, KitsuOutbox, LibraryEntry, UnmatchedItem
from tests.api.support import KeyedClient, assert_problem

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("show", "kitsu_id", "episode"),
    [
        ({"kitsu_id": 1, "episode": 4}, 1, 4),
        ({"mal_id": 1, "episode": 4}, 1, 4),
        ({"anilist_id": 1, "episode": 4}, 1, 4),
        ({"anidb_id": 23, "episode": 4}, 1, 4),
        ({"tvdb_id": 76885, "season": 1, "episode": 4}, 1, 4),
        ({"tmdb_id": 1429, "season": 3, "episode": 22}, 41982, 10),
        ({"tvdb_id": 83692, "episode": 15}, 197, 15),  # absolute numbering: no season
        ({"tvdb_id": 72025, "season": 0, "episode": 1}, 266, 1),  # a special
        ({"imdb_id": "tt0119698", "episode": 1}, 142, 1),
        ({"tmdb_movie_id": 128, "episode": 1}, 142, 1),
    ],
)
def test_a_show_named_by_any_known_id_moves_its_kitsu_entry(
    api: KeyedClient, datasets: None, show: dict[str, Any], kitsu_id: int, episode: int
) -> None:
    response = api.post("/scrobble", show)

    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["outcome"], answer["kitsu_anime_id"], answer["episode"]) == (
        "recorded",
        kitsu_id,
        episode,
    )
    assert answer["found_by"]
    assert answer["entry"]["kitsu_anime_id"] == kitsu_id
    assert answer["entry"]["progress"] == episode or answer["entry"]["status"] == "completed"
    assert answer["delivery"].startswith("kept in Revenge")
    assert LibraryEntry.objects.get(user=api.user, anime__kitsu_id=kitsu_id).progress == episode


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_changes_nothing(
    api: KeyedClient, datasets: None
) -> None:
    headers = {"Idempotency-Key": "watch-7f3a"}

    first = api.post("/scrobble", {"kitsu_id": 1, "episode": 4}, headers=headers)
    retry = api.post("/scrobble", {"kitsu_id": 1, "episode": 4}, headers=headers)
    without = api.post("/scrobble", {"kitsu_id": 1, "episode": 4})

    assert first.json() == retry.json()
    assert retry.json()["outcome"] == "recorded"
    assert without.json()["outcome"] == "repeated"
    assert IdempotentRequest.objects.filter(user=api.user).count() == 1


def test_an_idempotency_key_is_the_users_own(
    api: KeyedClient, keyed: Callable[..., KeyedClient], datasets: None
) -> None:
    headers = {"Idempotency-Key": "same-key"}
    other = keyed()

    api.post("/scrobble", {"kitsu_id": 1, "episode": 4}, headers=headers)
    theirs = other.post("/scrobble", {"kitsu_id": 1, "episode": 2}, headers=headers)

    assert theirs.json()["episode"] == 2
    assert LibraryEntry.objects.get(user=other.user).progress == 2


def test_a_show_named_by_nothing_is_400(api: KeyedClient) -> None:
    body = assert_problem(api.post("/scrobble", {"episode": 3, "title": "  "}), 400)

    assert "kitsu_id" in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kitsu_id": 1, "episode": 0}, "episode"),
        ({"kitsu_id": 1}, "episode"),
        ({"imdb_id": "0119698", "episode": 1}, "imdb_id"),
        ({"tvdb_id": 76885, "season": -1, "episode": 1}, "season"),
        ({"kitsu_id": 1, "episode": 2**31}, "episode"),
        ({"kitsu_id": 2**40, "episode": 1}, "kitsu_id"),
        ({"kitsu_id": 1, "episode": 1, "epsiode": 2}, "epsiode"),
    ],
)
def test_invalid_numbers_are_422_naming_the_field(
    api: KeyedClient, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(api.post("/scrobble", body), 422)

    assert problem["errors"][0]["field"] == field


def test_an_unresolved_show_is_answered_with_the_unmatched_item(
    api: KeyedClient, datasets: None, kitsu: Any
) -> None:
    response = api.post(
        "/scrobble", {"tvdb_id": 999001, "season": 1, "episode": 3, "title": "Obscure"}
    )

    answer = response.json()
    assert response.status_code == 200
    assert answer["outcome"] == "unmatched"
    assert answer["reason"]
    item = UnmatchedItem.objects.get(user=api.user)
    assert answer["unmatched_id"] == item.pk
    assert answer["entry"] is None


def test_a_scrobble_is_queued_for_kitsu_when_the_direction_sends_there(
    keyed: Callable[..., KeyedClient],
    linked_user: Callable[..., Any],
    datasets: None,
    settings: Any,
    deliveries: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    api = keyed(linked_user())
    settings.KITSU_SYNC_DIRECTION = "two_way"

    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/scrobble", {"kitsu_id": 1, "episode": 4}).json()

    assert answer["delivery"] == "queued for Kitsu"
    assert answer["entry"]["kitsu"]["state"] == "waiting"
    assert KitsuOutbox.objects.filter(user=api.user).count() == 1
    assert deliveries == [(api.user.pk,)]


@pytest.mark.django_db(transaction=True)
def test_reports_of_a_new_unmatched_show_at_once_each_keep_their_episode(
    keyed: Callable[..., KeyedClient], datasets: None, kitsu: Any
) -> None:
    api = keyed()
    barrier = threading.Barrier(4)

    def report(episode: int) -> int:
        try:
            barrier.wait(timeout=10)
            body = {"tvdb_id": 999002, "season": 1, "episode": episode}
            return api.post("/scrobble", body).status_code
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(report, [1, 2, 3, 4]))

    assert statuses == [200, 200, 200, 200]
    item = UnmatchedItem.objects.get(user=api.user)
    assert sorted(w["episode"] for w in item.episodes) == [1, 2, 3, 4]
    assert item.reports == 4
