"""The list page at scale: a page of 50 entries from the middle of a 5,000-entry list against a
50-entry list's one page, rendered by the product's view (Django's test client, in this
process): time as a ratio, and SQL queries (the same number whatever the list's size).

    .venv/bin/python -m bench.list_page [--entries 5000] [--repeat 20]

Each list is a fresh user's; every page is sorted by score (an index-less order, the worst
case), and rendered `--repeat` times after one warm-up; the median counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.harness import (
    empty_tables,
    load_note,
    machine_description,
    markdown_table,
    prepare_database,
    save_results,
)
from kitsu_sync.models import Anime, LibraryEntry, WatchStatus

ENTRIES = 5_000
SMALL = 50
REPEAT = 20
TARGET_RATIO = 1.5


def make_list(name: str, count: int, first_kitsu_id: int) -> Any:
    user = get_user_model().objects.create_user(name)  # force_login: no password
    anime = Anime.objects.bulk_create(
        Anime(
            kitsu_id=first_kitsu_id + n,
            title=f"{name} anime {n:05d}",
            episode_count=24,
            poster_url=f"https://media.example/{n}.jpg",
        )
        for n in range(count)
    )
    LibraryEntry.objects.bulk_create(
        LibraryEntry(
            user=user,
            anime=one,
            status=WatchStatus.WATCHING,
            progress=n % 24,
            score=(n * 7) % 100 or None,
        )
        for n, one in enumerate(anime)
    )
    return user


def render(user: Any, *, page: int, repeat: int) -> dict[str, Any]:
    client = Client(HTTP_HOST="localhost")  # one of the default ALLOWED_HOSTS
    client.force_login(user)
    query = {"sort": "-score", "page": str(page)}
    assert client.get("/library/", query, secure=True).status_code == 200  # warm-up
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/library/", query, secure=True)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get("/library/", query, secure=True)
    return {
        "median_ms": 1000 * statistics.median(seconds),
        "queries": len(queries.captured_queries),
        "rows": response.content.count(b'<tr class="entry"'),
    }


def run(*, entries: int, repeat: int) -> dict[str, Any]:
    empty_tables()
    small = render(make_list("small", SMALL, 1_000_000), page=1, repeat=repeat)
    # A page from the middle of the large list: the same 50 rows to render.
    middle = max(entries // SMALL // 2, 1)
    large = render(make_list("large", entries, 2_000_000), page=middle, repeat=repeat)
    return {
        "entries": entries,
        "small": small,
        "large": large,
        "ratio": large["median_ms"] / small["median_ms"],
        "same_queries": small["queries"] == large["queries"],
    }


def report(results: dict[str, Any]) -> str:
    rows = [
        (f"{size:,}", f"{figures['median_ms']:.1f}", figures["queries"], figures["rows"])
        for size, figures in (
            (SMALL, results["small"]),
            (results["entries"], results["large"]),
        )
    ]
    table = markdown_table(
        ["entries in the list", "page render ms (median)", "queries", "rows"], rows
    )
    verdict = (
        f"ratio {results['ratio']:.2f} (target ≤ {TARGET_RATIO}); same queries: "
        f"{'yes' if results['same_queries'] else 'no'}"
    )
    return f"{table}\n\n{verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    options = parser.parse_args(argv)
    prepare_database()
    before = machine_description()
    results = run(entries=options.entries, repeat=options.repeat)
    after = machine_description()
    save_results("list_page", {"machine": before, **results})
    print("A page of the list page (50 entries, ordered by score):\n")
    print(report(results))
    print(load_note(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
