"""Sending Revenge's changes to Kitsu (export only and two-way), against the sandbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync.models import (
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    SyncOutcome,
    SyncStatus,
    SyncTrigger,
)
from kitsu_sync.services.sync import preview_sync, run_sync
from tests.sync_support import kitsu_update_entry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_way")]

WRITE_ROUTES = ("POST /api/edge/library-entries", "PATCH /api/edge/library-entries/:id")


@pytest.fixture
def two_way(imported: Any, settings: Any) -> None:
    """Every test here starts from `imported`, whose syncs from here on are two-way."""
    settings.KITSU_SYNC_DIRECTION = "two_way"


def change_locally(entry: LibraryEntry, *, ago: timedelta = timedelta(0), **fields: Any) -> None:
    """Edit an entry the way Revenge's UI or player does: fields plus local_updated_at."""
    for name, value in fields.items():
        setattr(entry, name, value)
    entry.local_updated_at = timezone.now() - ago
    entry.save()


def entry_where(user: Any, **filters: Any) -> LibraryEntry:
    return (
        LibraryEntry.objects.filter(user=user, **filters)
        .select_related("anime")
        .order_by("kitsu_entry_id")
        .first()
    )


def writes(sandbox: Any) -> int:
    routes = sandbox.stats()["by_route"]
    return sum(routes.get(route, 0) for route in WRITE_ROUTES)


def test_a_progress_change_in_revenge_reaches_kitsu_once(kitsu: Any, imported: Any) -> None:
    entry = entry_where(imported, status="watching", anime__episode_count__gte=10, progress__lt=5)
    change_locally(entry, progress=entry.progress + 2)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.pushed == 1
    record = kitsu.store.entry_by_id(entry.kitsu_entry_id)
    assert record.progress == entry.progress
    entry.refresh_from_db()
    assert entry.synced_values["progress"] == entry.progress
    assert entry.kitsu_updated_at.timestamp() * 1000 == pytest.approx(record.updated_at)

    again = run_sync(user_id=imported.pk, trigger=SyncTrigger.SCHEDULE)
    assert (again.pushed, again.updated, again.conflicts) == (0, 0, 0)
    assert writes(kitsu) == 1


def test_progress_past_the_episode_count_is_capped_and_kitsu_completes_the_entry(
    kitsu: Any, imported: Any
) -> None:
    entry = entry_where(imported, status="watching", anime__episode_count__gte=2)
    count = entry.anime.episode_count
    change_locally(entry, progress=count + 5)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    record = kitsu.store.entry_by_id(entry.kitsu_entry_id)
    assert (record.progress, record.status) == (count, "completed")
    entry.refresh_from_db()
    # Kitsu's answer is adopted: the capped progress, and the completion it implied.
    assert (entry.progress, entry.status) == (count, "completed")
    assert entry.finished_at is not None


def test_clearing_a_rating_in_revenge_clears_it_on_kitsu(kitsu: Any, imported: Any) -> None:
    entry = entry_where(imported, score__isnull=False)
    change_locally(entry, score=None)

    run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).rating_twenty is None
    entry.refresh_from_db()
    assert entry.score is None
    assert entry.synced_values["score"] is None


def test_a_low_score_becomes_the_lowest_rating_kitsu_accepts(kitsu: Any, imported: Any) -> None:
    entry = entry_where(imported, score__isnull=True, status="completed")
    change_locally(entry, score=3)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).rating_twenty == 2
    entry.refresh_from_db()
    assert entry.score == 10  # what Kitsu now holds, read back


def test_a_rewatch_started_in_revenge_reaches_kitsu_as_reconsuming(
    kitsu: Any, imported: Any
) -> None:
    entry = entry_where(imported, status="completed", rewatching=False, anime__episode_count__gte=3)
    change_locally(entry, status="watching", rewatching=True, progress=1)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    record = kitsu.store.entry_by_id(entry.kitsu_entry_id)
    assert (record.status, record.progress, record.reconsuming) == ("current", 1, True)


def test_both_sides_changing_progress_keeps_the_higher_and_logs_the_conflict(
    kitsu: Any, imported: Any
) -> None:
    entry = entry_where(imported, status="watching", anime__episode_count__gte=12, progress__lt=4)
    kitsu_update_entry(kitsu, entry.kitsu_entry_id, {"progress": entry.progress + 3})
    change_locally(entry, progress=entry.progress + 5, ago=timedelta(days=1))

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.conflicts == 1
    [conflict] = run.conflict_log
    assert conflict["anime"] == entry.anime.kitsu_id
    assert conflict["field"] == "progress"
    assert (conflict["local"], conflict["remote"]) == (entry.progress, entry.progress - 2)
    assert conflict["kept"] == "revenge"
    assert "never goes backwards" in conflict["rule"]
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress


def test_both_sides_changing_notes_keeps_the_newer_change(kitsu: Any, imported: Any) -> None:
    entry = entry_where(imported, status="completed")
    change_locally(entry, notes="Written in Revenge yesterday", ago=timedelta(days=1))
    kitsu_update_entry(kitsu, entry.kitsu_entry_id, {"notes": "Written on Kitsu today"})

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    [conflict] = run.conflict_log
    assert (conflict["field"], conflict["kept"]) == ("notes", "kitsu")
    assert conflict["rule"].startswith("newer change wins")
    entry.refresh_from_db()
    assert entry.notes == "Written on Kitsu today"
    assert run.pushed == 0


def test_a_rewatch_started_on_kitsu_wins_over_revenges_progress(kitsu: Any, imported: Any) -> None:
    entry = entry_where(imported, status="watching", anime__episode_count__gte=12, progress__lt=6)
    kitsu_update_entry(kitsu, entry.kitsu_entry_id, {"progress": 1, "reconsuming": True})
    change_locally(entry, progress=entry.progress + 4)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    entry.refresh_from_db()
    assert (entry.progress, entry.rewatching) == (1, True)
    progress_conflict = next(c for c in run.conflict_log if c["field"] == "progress")
    assert progress_conflict["kept"] == "kitsu"
    assert "rewatch started on Kitsu" in progress_conflict["rule"]


def test_an_entry_only_in_revenge_is_created_on_kitsu(kitsu: Any, imported: Any) -> None:
    on_kitsu = {e.media_id for e in kitsu.store.entries_by_user[1001] if e.kind == "anime"}
    anime_id = next(a.id for a in kitsu.store.anime[:200] if a.id not in on_kitsu and not a.nsfw)
    from kitsu_sync.services.watch import record_watch_progress

    entry = record_watch_progress(user_id=imported.pk, anime_kitsu_id=anime_id, episode=1).entry

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    entry.refresh_from_db()
    assert entry.kitsu_entry_id is not None
    record = kitsu.store.entry_by_id(entry.kitsu_entry_id)
    assert (record.media_id, record.progress, record.user_id) == (anime_id, 1, 1001)
    assert kitsu.stats()["by_route"]["POST /api/edge/library-entries"] == 1


def test_a_change_kitsu_refuses_is_recorded_and_the_others_still_go(
    kitsu: Any, imported: Any
) -> None:
    unknown_length = entry_where(imported, anime__episode_count__isnull=True)
    normal = entry_where(imported, status="watching", anime__episode_count__gte=12, progress__lt=5)
    # Kitsu caps progress of a title with no episode count at "unreasonably high" values.
    change_locally(unknown_length, progress=5000)
    change_locally(normal, progress=normal.progress + 1)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.PARTIAL
    assert (run.pushed, run.failed) == (1, 1)
    [error] = run.errors
    assert error["anime"] == unknown_length.anime.kitsu_id
    assert "Kitsu refused the change" in error["reason"]
    assert "unreasonably high" in error["reason"]
    state = KitsuSyncState.objects.get(user=imported)
    assert state.last_sync_status == SyncStatus.PARTIAL
    assert state.errors[0]["reason"] == error["reason"]
    assert kitsu.store.entry_by_id(normal.kitsu_entry_id).progress == normal.progress


def test_export_only_sends_revenges_changes_and_ignores_kitsus(
    kitsu: Any, imported: Any, settings: Any
) -> None:
    settings.KITSU_SYNC_DIRECTION = "export_only"
    mine = entry_where(imported, status="watching", anime__episode_count__gte=12, progress__lt=5)
    theirs = entry_where(imported, status="completed")
    change_locally(mine, progress=mine.progress + 1)
    kitsu_update_entry(kitsu, theirs.kitsu_entry_id, {"notes": "Kitsu only"})

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert kitsu.store.entry_by_id(mine.kitsu_entry_id).progress == mine.progress
    theirs.refresh_from_db()
    assert theirs.notes != "Kitsu only"
    assert run.updated == 0


def test_import_only_never_writes_to_kitsu(kitsu: Any, imported: Any, settings: Any) -> None:
    settings.KITSU_SYNC_DIRECTION = "import_only"
    entry = entry_where(imported, status="watching", anime__episode_count__gte=12, progress__lt=5)
    change_locally(entry, progress=entry.progress + 1)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL, full=True)

    assert run.pushed == 0
    assert writes(kitsu) == 0
    entry.refresh_from_db()
    assert entry.progress == kitsu.store.entry_by_id(entry.kitsu_entry_id).progress + 1


def test_a_dry_run_changes_nothing_on_either_side_and_says_what_would(
    kitsu: Any, imported: Any
) -> None:
    local = entry_where(imported, status="watching", anime__episode_count__gte=12, progress__lt=5)
    remote = entry_where(imported, status="completed")
    change_locally(local, progress=local.progress + 1)
    kitsu_update_entry(kitsu, remote.kitsu_entry_id, {"notes": "From Kitsu"})
    kitsu.reset(data=False, tokens=False)
    rows_before = {e.pk: (e.updated_at, e.synced_values) for e in LibraryEntry.objects.all()}
    state_before = KitsuSyncState.objects.values().get(user=imported)

    run = preview_sync(user_id=imported.pk, trigger=SyncTrigger.COMMAND, full=True)

    assert run.dry_run
    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert writes(kitsu) == 0
    assert {e.pk: (e.updated_at, e.synced_values) for e in LibraryEntry.objects.all()} == (
        rows_before
    )
    assert KitsuSyncState.objects.values().get(user=imported) == state_before
    planned = {(c["side"], c["action"], c["anime"]): c["changes"] for c in run.planned_changes}
    assert planned[("kitsu", "update", local.anime.kitsu_id)]["progress"] == {
        "from": local.progress - 1,
        "to": local.progress,
    }
    assert planned[("revenge", "update", remote.anime.kitsu_id)]["notes"]["to"] == "From Kitsu"
    assert kitsu.store.entry_by_id(local.kitsu_entry_id).progress == local.progress - 1


def test_an_expired_token_is_refreshed_once_and_the_sync_goes_on(kitsu: Any, imported: Any) -> None:
    old_token = KitsuToken.objects.get(user=imported).access_token
    kitsu.expire_tokens(kitsu.credentials(1).user_id)
    entry = entry_where(imported, status="watching", anime__episode_count__gte=12, progress__lt=5)
    change_locally(entry, progress=entry.progress + 1)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.pushed == 1
    assert KitsuToken.objects.get(user=imported).access_token != old_token
    assert kitsu.stats()["by_status"]["401"] == 1


def test_a_revoked_link_stops_the_sync_and_deletes_nothing(kitsu: Any, imported: Any) -> None:
    count = LibraryEntry.objects.filter(user=imported).count()
    kitsu.revoke_tokens(kitsu.credentials(1).user_id)

    run = run_sync(user_id=imported.pk, trigger=SyncTrigger.SCHEDULE, full=True)

    assert run.outcome == SyncOutcome.FAILED
    assert "Link Kitsu again" in run.errors[-1]["reason"]
    state = KitsuSyncState.objects.get(user=imported)
    assert state.last_sync_status == SyncStatus.NEEDS_RELINK
    assert KitsuToken.objects.get(user=imported).needs_relink
    assert LibraryEntry.objects.filter(user=imported).count() == count
    token = KitsuToken.objects.get(user=imported)
    for error in run.errors:
        assert token.access_token not in error["reason"]
        assert token.refresh_token not in error["reason"]
