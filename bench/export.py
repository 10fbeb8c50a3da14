"""Export: k entries changed in Revenge cost k write requests to Kitsu
(no read-before-write per entry) plus the import's own requests.

    .venv/bin/python -m bench.export [--entries 5000] [--changes 1,50,300]

Two-way sync. After a full import, k entries the user is watching get one more episode
through the watch service (`record_watch_progress`, what the media server calls); then:

- batched: the next scheduled sync (an incremental pass) reads Kitsu's changes and sends the k;
- at once: `outbox.deliver`, what the task queued by a watch report runs (the watch reports
  queued the k entries in the outbox).
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings as django_settings
from django.db.models import F, Q

from bench.harness import (
    LIBRARY_ROUTE,
    LinkedUser,
    Sandbox,
    fully_imported_user,
    markdown_table,
    run_cases,
    run_changes_benchmark,
)
from kitsu_sync.models import LibraryEntry, SyncTrigger, WatchStatus
from kitsu_sync.services import outbox
from kitsu_sync.services.sync import run_sync
from kitsu_sync.services.watch import record_watch_progress

ENTRIES = 5_000
CHANGES = (1, 50, 300)
WRITE_ROUTE = "PATCH /api/edge/library-entries/:id"
READ_ONE_ROUTE = "GET /api/edge/library-entries/:id"


def watch_next_episode(user: LinkedUser, count: int) -> list[int]:
    """The user watches one more episode of `count` shows in progress; their entry pks."""
    watching = (
        LibraryEntry.objects.filter(
            user_id=user.user_id, status=WatchStatus.WATCHING, rewatching=False
        )
        .filter(
            Q(anime__episode_count__isnull=True) | Q(anime__episode_count__gt=F("progress") + 1)
        )
        .select_related("anime")
        .order_by("pk")[:count]
    )
    changed = []
    for entry in watching:
        record_watch_progress(
            user_id=user.user_id, anime_kitsu_id=entry.anime.kitsu_id, episode=entry.progress + 1
        )
        changed.append(entry.pk)
    if len(changed) < count:
        raise RuntimeError(f"Only {len(changed)} shows in progress; use a bigger --entries.")
    return changed


def _costs(sandbox: Sandbox, traffic: Any, k: int) -> dict[str, Any]:
    writes = traffic.to(WRITE_ROUTE)
    return {
        "changes": k,
        "requests": traffic.total,
        "list_requests": traffic.to(LIBRARY_ROUTE),
        "write_requests": writes,
        "read_one_requests": traffic.to(READ_ONE_ROUTE),
        "other_requests": traffic.total - writes - traffic.to(LIBRARY_ROUTE),
        "by_route": traffic.by_route,
    }


def benchmark_case(sandbox: Sandbox, changes: int) -> dict[str, Any]:
    user = fully_imported_user(sandbox)
    watch_next_episode(user, changes)
    with sandbox.counting() as traffic:
        run = run_sync(user_id=user.user_id, trigger=SyncTrigger.SCHEDULE)
    batched = {**_costs(sandbox, traffic, changes), "pushed": run.pushed, "failed": run.failed}
    batched["target"] = changes + batched["list_requests"]

    watch_next_episode(user, changes)
    with sandbox.counting() as traffic:
        pushed = outbox.deliver(user_id=user.user_id).sent
    at_once = {**_costs(sandbox, traffic, changes), "pushed": pushed, "failed": changes - pushed}
    at_once["target"] = changes
    return {"changes": changes, "batched": batched, "at_once": at_once}


def run(*, entries: int, changes: list[int], settings: Any = django_settings) -> dict[str, Any]:
    """`settings`: where to point the product (pytest's `settings` fixture in tests)."""
    settings.KITSU_SYNC_DIRECTION = "two_way"
    # The benchmark delivers the outbox itself (a task would, in a worker).
    settings.KITSU_SYNC_ENABLED = False
    return run_cases(benchmark_case, entries=entries, changes=changes, settings=settings)


def report(results: dict[str, Any]) -> str:
    rows = []
    for case in results["cases"]:
        for path in ("batched", "at_once"):
            costs = case[path]
            rows.append(
                (
                    case["changes"],
                    "next sync" if path == "batched" else "outbox delivery",
                    costs["list_requests"],
                    costs["write_requests"],
                    costs["read_one_requests"],
                    costs["other_requests"],
                    f"{costs['requests']} (≤ {costs['target']})",
                    costs["pushed"],
                )
            )
    return markdown_table(
        (
            "entries changed in Revenge (k)",
            "sent by",
            "list requests",
            "PATCH requests",
            "GET one entry",
            "other",
            "total (target)",
            "pushed",
        ),
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    heading = "library of {entries:,} anime entries, one user, two-way sync:\n"
    return run_changes_benchmark(sys.modules[__name__], argv, name="export", heading=heading)


if __name__ == "__main__":
    sys.exit(main())
