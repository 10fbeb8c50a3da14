"""A user's own edits of their list: checked as Kitsu will check them, saved as Revenge's
change, queued for Kitsu when the direction sends changes there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from kitsu_sync.models import KitsuOutbox, LibraryEntry, OutboxAction
from kitsu_sync.services import entries
from kitsu_sync.services.entries import EntryError, NoSuchEntry
from tests.mapping_files import store_anime

pytestmark = pytest.mark.django_db


@pytest.fixture
def listed(make_user: Callable[..., Any]) -> LibraryEntry:
    """A user's entry for a 26-episode show, never changed in Revenge."""
    anime = store_anime(1, episode_count=26, title="Cowboy Bebop")
    return LibraryEntry.objects.create(
        user=make_user(), anime=anime, status="watching", progress=3, kitsu_entry_id=500
    )


def edit(entry: LibraryEntry, **changes: Any) -> LibraryEntry:
    return entries.update_entry(
        user_id=entry.user_id, anime_kitsu_id=entry.anime.kitsu_id, changes=changes
    )


def test_an_edit_is_saved_as_revenges_change(listed: LibraryEntry) -> None:
    edited = edit(listed, status="on_hold", progress=7, score=85, notes="slow middle")

    edited.refresh_from_db()
    assert (edited.status, edited.progress, edited.score, edited.notes) == (
        "on_hold",
        7,
        85,
        "slow middle",
    )
    assert edited.local_updated_at is not None
    assert edited.progressed_at is not None


def test_an_edit_that_changes_nothing_is_not_a_change(listed: LibraryEntry) -> None:
    edited = edit(listed, status="watching", progress=3)

    edited.refresh_from_db()
    assert edited.local_updated_at is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"progress": 27}, "progress", "0 to 26"),
        ({"progress": -1}, "progress", "0 to 26"),
        ({"progress": "4"}, "progress", "whole number"),
        ({"score": 101}, "score", "0 to 100"),
        ({"rewatch_count": 51}, "rewatch_count", "0 to 50"),
        ({"status": "finished"}, "status", "status is one of"),
        ({"private": "yes"}, "private", "true or false"),
        ({"notes": "x" * 10_001}, "notes", "at most 10000"),
        ({"started_at": datetime(2025, 1, 1)}, "started_at", "time zone"),
        (
            {
                "started_at": datetime(2025, 2, 1, tzinfo=UTC),
                "finished_at": datetime(2025, 1, 1, tzinfo=UTC),
            },
            "finished_at",
            "before started_at",
        ),
        ({"kitsu_entry_id": 1}, "kitsu_entry_id", "cannot be changed"),
    ],
)
def test_a_value_kitsu_would_refuse_is_refused_with_the_field_and_nothing_saved(
    listed: LibraryEntry, changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(EntryError, match=message) as refused:
        edit(listed, **changes)

    assert refused.value.field == field
    listed.refresh_from_db()
    assert (listed.progress, listed.local_updated_at) == (3, None)


def test_a_score_of_zero_clears_the_rating(listed: LibraryEntry) -> None:
    edit(listed, score=70)

    assert edit(listed, score=0).score is None


def test_another_users_entry_is_not_found(
    listed: LibraryEntry, make_user: Callable[..., Any]
) -> None:
    with pytest.raises(NoSuchEntry):
        entries.update_entry(
            user_id=make_user().pk, anime_kitsu_id=listed.anime.kitsu_id, changes={"progress": 4}
        )


def test_edits_are_queued_for_kitsu_only_when_the_direction_sends_there(
    listed: LibraryEntry, settings: Any, link_user: Callable[..., Any], kitsu: Any
) -> None:
    link_user(listed.user, kitsu)
    settings.KITSU_SYNC_DIRECTION = "import_only"
    listed = edit(listed, progress=4)
    assert not KitsuOutbox.objects.exists()
    [standing] = entries.standings([listed]).values()
    assert standing.state == entries.KitsuState.LOCAL

    settings.KITSU_SYNC_DIRECTION = "export_only"
    edit(listed, progress=5)

    row = KitsuOutbox.objects.get()
    assert (row.entry_id, row.action) == (listed.pk, OutboxAction.WRITE)
    [standing] = entries.standings([listed]).values()
    assert standing.state == entries.KitsuState.WAITING


def test_adding_an_anime_twice_keeps_one_entry(make_user: Callable[..., Any]) -> None:
    user = make_user()
    store_anime(1, episode_count=26, title="Cowboy Bebop")

    first, created = entries.add_entry(user_id=user.pk, anime_kitsu_id=1, status="plan_to_watch")
    again, created_again = entries.add_entry(user_id=user.pk, anime_kitsu_id=1, status="watching")

    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert LibraryEntry.objects.get(user=user).status == "plan_to_watch"


def test_adding_an_anime_this_server_never_saw_asks_kitsu_for_it(
    kitsu: Any, make_user: Callable[..., Any]
) -> None:
    record = next(a for a in kitsu.store.anime if not a.nsfw and a.episode_count)
    user = make_user()

    entry, created = entries.add_entry(user_id=user.pk, anime_kitsu_id=record.id, status="watching")

    assert created
    assert entry.anime.title == record.canonical_title
    assert entry.anime.episode_count == record.episode_count


def test_removing_an_entry_never_sent_to_kitsu_drops_its_waiting_change(
    make_user: Callable[..., Any], settings: Any, link_user: Callable[..., Any], kitsu: Any
) -> None:
    settings.KITSU_SYNC_DIRECTION = "two_way"
    user = make_user()
    link_user(user, kitsu)
    store_anime(1, episode_count=26, title="Cowboy Bebop")
    entries.add_entry(user_id=user.pk, anime_kitsu_id=1, status="watching")
    assert KitsuOutbox.objects.filter(action=OutboxAction.WRITE).count() == 1

    assert entries.delete_entry(user_id=user.pk, anime_kitsu_id=1)

    assert not KitsuOutbox.objects.exists()
    assert not LibraryEntry.objects.exists()
    assert not entries.delete_entry(user_id=user.pk, anime_kitsu_id=1)


def test_progress_of_a_title_of_unknown_length_is_capped_as_kitsu_caps_it(
    make_user: Callable[..., Any],
) -> None:
    anime = store_anime(7, episode_count=None, title="Long Runner")  # no start date: 100
    entry = LibraryEntry.objects.create(user=make_user(), anime=anime, status="watching")

    assert edit(entry, progress=100).progress == 100
    with pytest.raises(EntryError, match="progress is 0 to 100, not 101"):
        edit(entry, progress=101)
