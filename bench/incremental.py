"""Incremental sync: requests and rows written when nothing changed on
Kitsu, and when k entries changed there.

    .venv/bin/python -m bench.incremental [--entries 10000] [--changes 1,100,1000]

Each case starts from a fresh full import of one user's library. The k changes are made on
Kitsu by the user (PATCH /library-entries/:id with their token, a new note on each entry),
not through Revenge; then `run_sync` runs as the scheduler would (an incremental pass).
Rows written are counted per table from the statements' row counts; the sync's own
bookkeeping (its SyncRun and KitsuSyncState rows) is reported apart from the library's rows.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from django.conf import settings as django_settings
from django.utils import timezone

from bench.harness import (
    LIBRARY_ROUTE,
    PAGE_SIZE,
    LinkedUser,
    Sandbox,
    counting_sql,
    fully_imported_user,
    markdown_table,
    run_cases,
    run_changes_benchmark,
)
from kitsu_sync.models import Anime, KitsuSyncState, LibraryEntry, SyncRun, SyncTrigger
from kitsu_sync.services.sync import run_sync

ENTRIES = 10_000
CHANGES = (1, 100, 1_000)
LIBRARY_TABLES = (LibraryEntry._meta.db_table, Anime._meta.db_table)
BOOKKEEPING_TABLES = (SyncRun._meta.db_table, KitsuSyncState._meta.db_table)


def change_on_kitsu(sandbox: Sandbox, user: LinkedUser, entry_ids: list[int]) -> None:
    """The user edits these entries on Kitsu itself (a new note on each)."""
    headers = {
        "Authorization": f"Bearer {user.access_token}",
        "Accept": "application/vnd.api+json",
        "Content-Type": "application/vnd.api+json",
    }
    stamp = time.time_ns()
    for entry_id in entry_ids:
        body = {
            "data": {
                "type": "libraryEntries",
                "id": str(entry_id),
                "attributes": {"notes": f"changed on Kitsu ({stamp})"},
            }
        }
        response = sandbox.http.patch(
            f"{sandbox.api_url}/library-entries/{entry_id}", json=body, headers=headers, timeout=60
        )
        response.raise_for_status()


def spread_sample(values: list[int], count: int) -> list[int]:
    """`count` values spread evenly over the sorted list (deterministic)."""
    ordered = sorted(values)
    step = len(ordered) / count
    return [ordered[int(i * step)] for i in range(count)]


def measure_sync(sandbox: Sandbox, user: LinkedUser) -> dict[str, Any]:
    """One scheduled (incremental) sync: its requests, round trips and rows written."""
    started_at = timezone.now()
    with sandbox.counting() as traffic, counting_sql() as sql:
        run = run_sync(user_id=user.user_id, trigger=SyncTrigger.SCHEDULE)
    written_ids = set(
        LibraryEntry.objects.filter(user_id=user.user_id, updated_at__gte=started_at).values_list(
            "kitsu_entry_id", flat=True
        )
    )
    return {
        "outcome": run.outcome,
        "full": run.full,
        "fetched": run.fetched,
        "updated": run.updated,
        "requests": traffic.total,
        "list_requests": traffic.to(LIBRARY_ROUTE),
        "by_route": traffic.by_route,
        "round_trips": sql.round_trips,
        "library_rows_written": sum(sql.rows_written_to(table) for table in LIBRARY_TABLES),
        "bookkeeping_rows_written": sum(sql.rows_written_to(table) for table in BOOKKEEPING_TABLES),
        "rows_written": dict(sql.rows_written),
        "written_entry_ids": sorted(written_ids),
    }


def benchmark_case(sandbox: Sandbox, changes: int) -> dict[str, Any]:
    """A fresh full import, then k changes on Kitsu, then the incremental sync."""
    user = fully_imported_user(sandbox)
    changed: list[int] = []
    if changes:
        entry_ids = list(
            LibraryEntry.objects.filter(user_id=user.user_id).values_list(
                "kitsu_entry_id", flat=True
            )
        )
        changed = spread_sample(entry_ids, changes)
        change_on_kitsu(sandbox, user, changed)
    result = measure_sync(sandbox, user)
    result["changes"] = changes
    # The cursor looks back a few minutes (sync.CURSOR_OVERLAP): entries Kitsu changed in that
    # window before the newest one imported come again, unchanged, and cost no writes.
    result["overlap_entries"] = result["fetched"] - changes
    result["pages_target"] = max(math.ceil(result["fetched"] / PAGE_SIZE), 1)
    result["only_changed_rows_written"] = result["written_entry_ids"] == sorted(changed)
    return result


def run(*, entries: int, changes: list[int], settings: Any = django_settings) -> dict[str, Any]:
    """`settings`: where to point the Kitsu client (pytest's `settings` fixture in tests)."""
    return run_cases(benchmark_case, entries=entries, changes=(0, *changes), settings=settings)


def report(results: dict[str, Any]) -> str:
    rows = []
    for case in results["cases"]:
        k = case["changes"]
        target = "≤ 2" if k == 0 else f"= {case['pages_target']} page(s) of changes"
        rows.append(
            (
                k,
                case["fetched"],
                case["overlap_entries"],
                f"{case['requests']} ({target})",
                case["library_rows_written"],
                "yes" if case["only_changed_rows_written"] else "**no**",
                case["bookkeeping_rows_written"],
                case["round_trips"],
            )
        )
    return markdown_table(
        (
            "entries changed on Kitsu (k)",
            "entries fetched",
            "of which overlap",
            "requests (target)",
            "library rows written",
            "exactly the k rows",
            "bookkeeping rows",
            "DB round trips",
        ),
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    heading = "library of {entries:,} anime entries, one user; an incremental sync:\n"
    return run_changes_benchmark(sys.modules[__name__], argv, name="incremental", heading=heading)


if __name__ == "__main__":
    sys.exit(main())
