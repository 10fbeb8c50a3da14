"""Importing a Kitsu library: the sandbox over real HTTP, PostgreSQL, field by field."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kitsu_sync.kitsu_api import parse_document
from kitsu_sync.merge import (
    SyncDirection,
)
from kitsu_sync.models import (
    Anime,
    KitsuSyncState,
    LibraryEntry,
    SyncOutcome,
    SyncStatus,
    SyncTrigger,
)
from kitsu_sync.plan import PagePlan, RemovalPlan, read_page
from kitsu_sync.sandbox.records import MAPPING_SITES
from kitsu_sync.services.library import apply_removals, sync_page
from kitsu_sync.services.sync import run_sync
from tests.kitsu_api import payloads
from tests.sync_support import kitsu_delete_entry, kitsu_update_entry, visible_anime_entries

pytestmark = pytest.mark.django_db

STATUS = {
    "current": "watching",
    "planned": "plan_to_watch",
    "completed": "completed",
    "on_hold": "on_hold",
    "dropped": "dropped",
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
LIBRARY_ROUTE = "GET /api/edge/library-entries"


def at(ms: int | None) -> datetime | None:
    return None if ms is None else EPOCH + timedelta(milliseconds=ms)


def expected_entry(record: Any) -> dict[str, Any]:
    return {
        "kitsu_entry_id": record.id,
        "status": STATUS[record.status],
        "progress": record.progress,
        "score": None if record.rating_twenty is None else record.rating_twenty * 5,
        "rewatching": record.reconsuming,
        "rewatch_count": record.reconsume_count,
        "notes": record.notes or "",
        "private": record.private,
        "started_at": at(record.started_at),
        "finished_at": at(record.finished_at),
        "progressed_at": at(record.progressed_at),
        "kitsu_updated_at": at(record.updated_at),
    }


def expected_anime(record: Any) -> dict[str, Any]:
    ids = {MAPPING_SITES[m.site]: int(m.external_id.split("/")[0]) for m in record.mappings}
    titles = record.titles
    return {
        "title": record.canonical_title,
        "title_en": titles.get("en") or titles.get("en_us") or "",
        "title_native": titles.get("ja_jp") or "",
        "episode_count": record.episode_count,
        "subtype": record.subtype,
        "nsfw": record.nsfw,
        "kitsu_score": None
        if record.average_rating is None
        else Decimal(record.average_rating) / 100,
        "mal_id": ids.get("myanimelist/anime"),
        "anilist_id": ids.get("anilist/anime"),
        "anidb_id": ids.get("anidb"),
        "tvdb_id": ids.get("thetvdb/series", ids.get("thetvdb")),
    }


def stored_entries(user: Any) -> dict[int, LibraryEntry]:
    return {
        entry.kitsu_entry_id: entry
        for entry in LibraryEntry.objects.filter(user=user).select_related("anime")
    }


def test_a_full_import_stores_every_entry_and_anime_field_by_field(
    kitsu: Any, linked_user: Any
) -> None:
    user = linked_user()
    seeded = visible_anime_entries(kitsu)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert (run.fetched, run.created, run.failed) == (len(seeded), len(seeded), 0)
    stored = stored_entries(user)
    assert set(stored) == {record.id for record in seeded}
    for record in seeded:
        entry = stored[record.id]
        actual = {name: getattr(entry, name) for name in expected_entry(record)}
        assert actual == expected_entry(record), f"entry {record.id}"
        anime = kitsu.store.anime_by_id(record.media_id)
        assert entry.anime.kitsu_id == anime.id
        actual_anime = {name: getattr(entry.anime, name) for name in expected_anime(anime)}
        assert actual_anime == expected_anime(anime), f"anime {anime.id}"
        # The merge base is exactly what was imported.
        assert entry.synced_values["progress"] == record.progress
        assert entry.local_updated_at is None


def test_the_import_covers_every_awkward_case_the_sandbox_seeds(
    kitsu: Any, linked_user: Any
) -> None:
    user = linked_user()

    run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)

    entries = list(LibraryEntry.objects.filter(user=user).select_related("anime"))
    anime = [entry.anime for entry in entries]
    assert any(a.nsfw for a in anime), "an R18 title (the demo account sees them)"
    assert any(a.episode_count is None for a in anime), "an ongoing title with no count"
    assert any(
        all(getattr(a, name) is None for name in ("mal_id", "anilist_id", "anidb_id", "tvdb_id"))
        for a in anime
    ), "a title without mappings"
    assert any(a.title_en == "" for a in anime), "a title with no English name"
    assert any(a.kitsu_score is None for a in anime), "a title with under 50 ratings"
    assert {10, 100, None} <= {e.score for e in entries}, "ratingTwenty 2, 20 and null"
    assert any(e.private for e in entries)
    assert any(e.rewatching and e.rewatch_count >= 1 for e in entries)
    assert any(e.notes for e in entries)
    assert any(e.started_at is None and e.status != "plan_to_watch" for e in entries)
    assert {e.status for e in entries} == set(STATUS.values())
    manga = [e for e in kitsu.store.entries_by_user[1001] if e.kind == "manga"]
    assert manga, "the seeded library holds manga too, which an anime import leaves out"


def test_a_second_run_writes_nothing(kitsu: Any, linked_user: Any) -> None:
    user = linked_user()
    run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)
    before = {e.pk: e.updated_at for e in LibraryEntry.objects.filter(user=user)}
    anime_before = {a.pk: a.updated_at for a in Anime.objects.all()}

    with CaptureQueriesContext(connection) as queries:
        run = run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND, full=True)

    assert run.outcome == SyncOutcome.SUCCESS
    assert (run.created, run.updated, run.deleted, run.pushed) == (0, 0, 0, 0)
    assert run.unchanged == len(before)
    assert {e.pk: e.updated_at for e in LibraryEntry.objects.filter(user=user)} == before
    assert {a.pk: a.updated_at for a in Anime.objects.all()} == anime_before
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))
        and ("kitsu_sync_libraryentry" in q["sql"] or "kitsu_sync_anime" in q["sql"])
    ]
    assert writes == []


def test_an_incremental_run_asks_only_for_entries_changed_since_the_cursor(
    kitsu: Any, linked_user: Any
) -> None:
    user = linked_user()
    run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)
    record = next(e for e in visible_anime_entries(kitsu) if e.status == "current")
    kitsu_update_entry(kitsu, record.id, {"notes": "Changed on Kitsu", "ratingTwenty": 17})
    kitsu.reset(data=False, tokens=False)  # fresh request counters, same data and tokens

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)

    assert run.outcome == SyncOutcome.SUCCESS
    assert not run.full
    [listing] = kitsu.requests_log(path="/api/edge/library-entries")
    assert "filter%5Bsince%5D" in listing["query"] or "filter[since]" in listing["query"]
    assert "sort=updatedAt" in listing["query"]
    assert run.fetched <= 3
    assert run.updated == 1
    entry = LibraryEntry.objects.get(user=user, kitsu_entry_id=record.id)
    assert (entry.notes, entry.score) == ("Changed on Kitsu", 85)
    assert entry.synced_values["notes"] == "Changed on Kitsu"
    state = KitsuSyncState.objects.get(user=user)
    assert state.cursor_updated_at == at(record.updated_at)


def test_only_a_full_pass_notices_an_entry_deleted_on_kitsu(kitsu: Any, linked_user: Any) -> None:
    user = linked_user()
    run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)
    gone = visible_anime_entries(kitsu)[0].id
    kitsu_delete_entry(kitsu, gone)

    incremental = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)
    assert incremental.deleted == 0
    assert LibraryEntry.objects.filter(kitsu_entry_id=gone).exists()

    full = run_sync(user_id=user.pk, trigger=SyncTrigger.ADMIN, full=True)
    assert full.outcome == SyncOutcome.SUCCESS
    assert full.deleted == 1
    assert not LibraryEntry.objects.filter(kitsu_entry_id=gone).exists()
    assert LibraryEntry.objects.filter(user=user).count() == len(visible_anime_entries(kitsu))
    assert KitsuSyncState.objects.get(user=user).last_full_sync_at == full.finished_at


def test_a_bad_entry_is_recorded_and_skipped_and_the_rest_imported(
    kitsu: Any, linked_user: Any, monkeypatch: Any
) -> None:
    user = linked_user()
    records = visible_anime_entries(kitsu)
    # Data the mapping must refuse (a negative progress); the sandbox serves it as it is.
    monkeypatch.setattr(records[3], "progress", -4)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)

    assert run.outcome == SyncOutcome.PARTIAL
    assert run.failed == 1
    [error] = run.errors
    assert error["entry"] == str(records[3].id)
    assert "progress" in error["reason"]
    assert "skipped" in error["reason"]
    assert LibraryEntry.objects.filter(user=user).count() == len(records) - 1
    state = KitsuSyncState.objects.get(user=user)
    assert state.last_sync_status == SyncStatus.PARTIAL
    assert state.errors == run.errors


def test_a_large_library_takes_one_list_request_per_500_entries(
    kitsu_at: Any, sandbox_factory: Any, linked_user: Any
) -> None:
    sandbox = kitsu_at(sandbox_factory(users=1, entries=1100))
    user = linked_user(sandbox=sandbox)
    total = len(visible_anime_entries(sandbox))

    with CaptureQueriesContext(connection) as queries:
        run = run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.created == total > 1000
    stats = sandbox.stats()
    assert stats["by_route"][LIBRARY_ROUTE] <= math.ceil(total / 500) + 1
    # No request per entry: the anime and their mappings came with the entries.
    assert stats["total"] <= math.ceil(total / 500) + 3
    assert run.requests_made == stats["by_route"][LIBRARY_ROUTE]
    # Writes are per page (and per bulk batch), never per entry.
    assert len(queries.captured_queries) < total / 10
    state = KitsuSyncState.objects.get(user=user)
    assert (state.progress_done, state.progress_total) == (total, total)


def test_a_sync_that_fails_half_way_keeps_what_it_imported_and_resumes(
    kitsu_at: Any, sandbox_factory: Any, linked_user: Any, retry_sleeps: list[float]
) -> None:
    sandbox = kitsu_at(sandbox_factory(users=1, entries=1100))
    user = linked_user(sandbox=sandbox)
    total = len(visible_anime_entries(sandbox))
    sandbox.set_faults(
        [{"kind": "status", "status": 503, "after": 1, "count": None, "method": "GET"}]
    )

    failed = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)

    assert failed.outcome == SyncOutcome.FAILED
    assert failed.errors[-1]["retryable"] is True
    assert "tried again" in failed.errors[-1]["reason"]
    assert retry_sleeps, "the client backed off between attempts (without sleeping here)"
    imported = {e.pk: e.updated_at for e in LibraryEntry.objects.filter(user=user)}
    assert len(imported) == 500
    state = KitsuSyncState.objects.get(user=user)
    assert state.last_sync_status == SyncStatus.FAILED
    assert state.cursor_updated_at is not None
    assert state.last_full_sync_at is None
    assert state.sync_claimed_until is None

    sandbox.set_faults([])
    sandbox.reset(data=False, tokens=False, faults=False)
    resumed = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)

    assert resumed.outcome == SyncOutcome.SUCCESS, resumed.errors
    assert LibraryEntry.objects.filter(user=user).count() == total
    # It picked up after the stored page, not from the start.
    assert resumed.fetched < total - 400
    assert sandbox.stats()["by_route"][LIBRARY_ROUTE] <= 2
    still = {e.pk: e.updated_at for e in LibraryEntry.objects.filter(pk__in=imported)}
    assert still == imported


def test_a_full_pass_that_finds_nothing_gone_costs_no_transaction() -> None:
    with CaptureQueriesContext(connection) as queries:
        apply_removals(RemovalPlan(deletes=(), unlinks=(), conflicts=()))

    assert queries.captured_queries == []


def test_a_failed_full_pass_deletes_nothing(
    kitsu_at: Any, sandbox_factory: Any, linked_user: Any
) -> None:
    sandbox = kitsu_at(sandbox_factory(users=1, entries=1100))
    user = linked_user(sandbox=sandbox)
    run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)
    gone = visible_anime_entries(sandbox)[-1].id
    kitsu_delete_entry(sandbox, gone)
    sandbox.set_faults(
        [{"kind": "status", "status": 500, "after": 1, "count": None, "method": "GET"}]
    )

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.ADMIN, full=True)

    assert run.outcome == SyncOutcome.FAILED
    assert run.deleted == 0
    assert LibraryEntry.objects.filter(kitsu_entry_id=gone).exists()


def test_an_entry_another_user_cannot_see_is_not_imported_for_them(
    kitsu: Any, linked_user: Any
) -> None:
    # Seeded user 2 keeps Kitsu's SFW filter on: Kitsu hides R18 entries even from their owner.
    user = linked_user("bob", index=2)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)

    assert run.outcome == SyncOutcome.SUCCESS
    assert run.created == len(visible_anime_entries(kitsu, index=2))
    assert not LibraryEntry.objects.filter(user=user, anime__nsfw=True).exists()


# --- one page straight into sync_page (no HTTP): what it reads and writes --------------------


def library_page(count: int = 30, *, first_entry_id: int = 35128879) -> dict[str, Any]:
    return payloads.library_page(offset=0, limit=count, count=count, first_entry_id=first_entry_id)


def import_one_page(user: Any, page: dict[str, Any]) -> tuple[PagePlan, list[str]]:
    """Import `page` for `user`; its plan and the statements that wrote library rows."""
    remote = read_page(parse_document(page).resources, now=datetime.now(UTC))
    with CaptureQueriesContext(connection) as queries:
        plan = sync_page(
            remote,
            user_id=user.pk,
            direction=SyncDirection.IMPORT_ONLY,
            after_write=lambda plan: None,
        )
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))
        and ("kitsu_sync_libraryentry" in q["sql"] or "kitsu_sync_anime" in q["sql"])
    ]
    return plan, writes


def anime_stamps() -> dict[int, datetime]:
    return dict(Anime.objects.values_list("kitsu_id", "updated_at"))


def test_a_user_whose_titles_are_stored_already_writes_only_their_entries(
    make_user: Any,
) -> None:
    import_one_page(make_user("alice"), library_page())
    before = anime_stamps()

    plan, writes = import_one_page(make_user("bob"), library_page(first_entry_id=50_000_000))

    assert plan.counts.created == 30
    assert anime_stamps() == before
    [insert] = writes
    assert insert.startswith('INSERT INTO "kitsu_sync_libraryentry"')
    assert LibraryEntry.objects.filter(user__username="bob").count() == 30


def test_an_anime_changed_on_kitsu_is_written_and_the_unchanged_ones_are_not(
    make_user: Any,
) -> None:
    user = make_user("alice")
    import_one_page(user, library_page())
    before = anime_stamps()
    page = library_page()
    page["included"][4]["attributes"]["averageRating"] = "91.35"
    page["included"][7]["attributes"]["canonicalTitle"] = "Renamed on Kitsu"

    plan, writes = import_one_page(user, page)

    assert plan.counts.unchanged == 30
    [upsert] = writes
    assert upsert.startswith('INSERT INTO "kitsu_sync_anime"')
    after = anime_stamps()
    assert {kitsu_id for kitsu_id in after if after[kitsu_id] != before[kitsu_id]} == {5, 8}
    assert Anime.objects.get(kitsu_id=5).kitsu_score == Decimal("91.35")
    assert Anime.objects.get(kitsu_id=8).title == "Renamed on Kitsu"
    assert Anime.objects.count() == 30


def test_entries_changed_on_kitsu_are_written_in_one_statement_and_keep_their_rows(
    make_user: Any,
) -> None:
    user = make_user("alice")
    import_one_page(user, library_page())
    before = {
        e.kitsu_entry_id: (e.pk, e.created_at, e.updated_at)
        for e in LibraryEntry.objects.filter(user=user)
    }
    page = library_page()
    for n, resource in enumerate(page["data"]):
        resource["attributes"].update(
            notes=f"Changed on Kitsu, {n}", progress=n, updatedAt="2019-01-02T03:04:05.678Z"
        )

    plan, writes = import_one_page(user, page)

    assert (plan.counts.updated, plan.counts.created) == (30, 0)
    [upsert] = writes
    assert upsert.startswith('INSERT INTO "kitsu_sync_libraryentry"')
    assert "CASE WHEN" not in upsert
    entries = list(LibraryEntry.objects.filter(user=user))
    assert len(entries) == 30
    for entry in entries:
        pk, created_at, updated_at = before[entry.kitsu_entry_id]
        n = entry.kitsu_entry_id - 35128879
        assert (entry.pk, entry.created_at) == (pk, created_at)
        assert entry.updated_at > updated_at
        assert (entry.notes, entry.progress) == (f"Changed on Kitsu, {n}", n)
        assert entry.synced_values["notes"] == f"Changed on Kitsu, {n}"
        assert entry.kitsu_updated_at == datetime(2019, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


HERE = Path(__file__).relative_to(ROOT)
BULK_WRITE_TESTS = Path("tests/test_db.py")
SQLITE_CHECKED = (
    f"{HERE}::test_a_full_import_stores_every_entry_and_anime_field_by_field",
    f"{HERE}::test_a_second_run_writes_nothing",
    f"{HERE}::test_an_incremental_run_asks_only_for_entries_changed_since_the_cursor",
    f"{HERE}::test_a_user_whose_titles_are_stored_already_writes_only_their_entries",
    f"{HERE}::test_an_anime_changed_on_kitsu_is_written_and_the_unchanged_ones_are_not",
    f"{HERE}::test_entries_changed_on_kitsu_are_written_in_one_statement_and_keep_their_rows",
    f"{BULK_WRITE_TESTS}::test_bulk_write_stores_every_column_as_bulk_create_does",
    f"{BULK_WRITE_TESTS}::test_bulk_write_refuses_a_value_too_long_for_its_column_as_bulk_create_does",
    f"{BULK_WRITE_TESTS}::test_bulk_write_gives_each_new_row_its_own_primary_key",
    f"{BULK_WRITE_TESTS}::test_bulk_write_upsert_changes_only_the_fields_it_names",
    f"{BULK_WRITE_TESTS}::test_bulk_write_upsert_on_the_primary_key_updates_stored_rows_in_place",
)


@pytest.mark.slow
def test_the_import_writes_the_same_on_sqlite_the_embedded_database(tmp_path: Path) -> None:
    # The embedded mode (make run) keeps its data in SQLite, where bulk_write is bulk_create.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env.update(
        ENV_FILE=str(ROOT / "tests" / "test.env"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SQLITE_CHECKED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{len(SQLITE_CHECKED)} passed" in result.stdout
