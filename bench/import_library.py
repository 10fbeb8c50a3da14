"""Single-user import: Kitsu requests, database round trips per page, wall
time as a ratio to a plain download of the same pages, and peak memory.

    .venv/bin/python -m bench.import_library [--sizes 1000,10000,50000] [--repeat 1]

For each size, a sandbox in this process seeds one user with exactly that many anime entries.
Then, each in a fresh process (so that its RSS high-water mark is its own):

- a warm-up download, untimed, so that the sandbox's serialisation caches are hot for both;
- the baseline: the same pages fetched with plain `requests` and parsed with `json.loads`
  (no mapping, no database);
- the import: `run_sync(full=True)` into an empty database, as `manage.py kitsu_sync` runs it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs

import requests
from django.db import connection

from bench.harness import (
    LIBRARY_ROUTE,
    PAGE_SIZE,
    UNPACED_RATE_LIMIT,
    Sandbox,
    counting_sql,
    empty_tables,
    link_users,
    load_note,
    machine_description,
    markdown_table,
    one_user_library,
    peak_rss_mb,
    prepare_database,
    product_environment,
    run_measurement,
    running_sandbox,
    save_results,
)
from kitsu_sync.mapping import LIBRARY_FIELDSETS
from kitsu_sync.models import SyncOutcome, SyncTrigger
from kitsu_sync.runtime import startup_objects_frozen
from kitsu_sync.services.sync import run_sync

SIZES = (1_000, 10_000, 50_000)
TOKEN_VARIABLE = "BENCH_KITSU_TOKEN"  # noqa: S105 - a variable name, not a token
# How the measurements run themselves in a fresh process (`python -m`).
MODULE = "bench.import_library"
RSS_GROWTH_TARGET_MB = 50
TIME_RATIO_TARGET = 2.0


def request_target(anime_entries: int) -> int:
    """The target: at most ceil(N/500) list requests + 3."""
    return math.ceil(anime_entries / PAGE_SIZE) + 3


def download_library(api_url: str, *, kitsu_user_id: str, token: str) -> dict[str, Any]:
    """The baseline: the pages the import asks for, with plain requests and json.loads."""
    http = requests.Session()
    headers = {"Accept": "application/vnd.api+json", "Authorization": f"Bearer {token}"}
    url: str | None = f"{api_url}/library-entries"
    params: dict[str, Any] | None = {
        "filter[userId]": kitsu_user_id,
        "filter[kind]": "anime",
        "page[limit]": PAGE_SIZE,
        "include": "anime,anime.mappings",
        "sort": "updatedAt",
        # The import asks for the mapped fields only (mapping.LIBRARY_FIELDSETS): so does this.
        **{f"fields[{kind}]": ",".join(names) for kind, names in LIBRARY_FIELDSETS.items()},
    }
    pages = entries = size = 0
    started = time.perf_counter()
    while url is not None:
        response = http.get(url, params=params, headers=headers, timeout=60)
        response.raise_for_status()
        document = json.loads(response.content)
        pages += 1
        entries += len(document["data"])
        size += len(response.content)
        url = document.get("links", {}).get("next")
        params = None  # links.next carries them
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pages": pages, "entries": entries, "bytes": size}


def import_library(user_id: int) -> dict[str, Any]:
    """The import, as `kitsu_sync --full` runs it, with its database round trips per page."""
    connection.ensure_connection()  # a worker's connection is already open
    rss_before = peak_rss_mb()
    marks: list[int] = []
    # As a worker does once when it starts (and the command before its syncs): a process's
    # start-up cost, like its imports, outside the timed import.
    with startup_objects_frozen(), counting_sql() as sql:

        def on_progress(done: int, total: int | None) -> None:
            marks.append(sql.round_trips)

        started = time.perf_counter()
        run = run_sync(
            user_id=user_id, trigger=SyncTrigger.COMMAND, full=True, progress=on_progress
        )
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "outcome": run.outcome,
        "fetched": run.fetched,
        "created": run.created,
        "failed": run.failed,
        "errors": [error["reason"] for error in run.errors],
        "requests_made": run.requests_made,
        "pages": len(marks),
        # Before the first page's callback: the run's setup and the first page itself.
        "round_trips_setup_and_first_page": marks[0] if marks else sql.round_trips,
        "round_trips_per_page": [b - a for a, b in pairwise(marks)],
        "round_trips_finish": sql.round_trips - (marks[-1] if marks else 0),
        "round_trips": sql.round_trips,
        "statements": sql.statements,
        "rows_written": dict(sql.rows_written),
        "rss_before_mb": rss_before,
        "rss_peak_mb": peak_rss_mb(),
    }


def _library_queries(sandbox: Sandbox) -> list[dict[str, list[str]]]:
    rows = sandbox.request_log()
    return sorted(
        (parse_qs(row["query"]) for row in rows if row["path"].endswith("/library-entries")),
        key=lambda query: json.dumps(query, sort_keys=True),
    )


def measure_pair(
    sandbox: Sandbox, environment: dict[str, str], *, warm_up: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One baseline download, then one import into an empty database, each in a fresh process."""
    empty_tables()
    user = link_users(sandbox, 1)[0]
    download = [
        "--measure",
        "baseline",
        "--api-url",
        sandbox.api_url,
        "--kitsu-user",
        user.kitsu_user_id,
    ]
    with_token = {**environment, TOKEN_VARIABLE: user.access_token}
    if warm_up:
        run_measurement(MODULE, download, with_token)
    sandbox.clear_stats()
    baseline = run_measurement(MODULE, download, with_token)
    baseline_queries = _library_queries(sandbox)
    sandbox.clear_stats()
    imported = run_measurement(
        MODULE, ["--measure", "import", "--user-id", str(user.user_id)], environment
    )
    if imported["outcome"] != SyncOutcome.SUCCESS:
        raise RuntimeError(f"The import did not succeed: {imported['errors']}")
    traffic = sandbox.stats()
    imported["requests"] = traffic["total"]
    imported["list_requests"] = traffic["by_route"].get(LIBRARY_ROUTE, 0)
    imported["same_pages_as_baseline"] = _library_queries(sandbox) == baseline_queries
    return baseline, imported


def _fastest(anime_entries: int, pairs: list[tuple[dict, dict]]) -> dict[str, Any]:
    # Other work on the machine only ever adds time: the fastest of each is the best estimate.
    baseline = min((b for b, _ in pairs), key=lambda b: b["seconds"])
    imported = min((i for _, i in pairs), key=lambda i: i["seconds"])
    return {
        "anime_entries": anime_entries,
        "baseline": baseline,
        "import": imported,
        "ratio": imported["seconds"] / baseline["seconds"],
        "pair_ratios": [i["seconds"] / b["seconds"] for b, i in pairs],
        "client_ms_per_page": (
            1000 * (imported["seconds"] - baseline["seconds"]) / imported["pages"]
        ),
        "request_target": request_target(anime_entries),
    }


def benchmark_latencies(
    anime_entries: int, *, latencies_ms: list[float], repeat: int = 1, warm_up: bool = True
) -> list[dict[str, Any]]:
    """Baseline and import of one library size at each sandbox latency, each the fastest of
    `repeat` runs. The latencies take turns within each repeat, so that a change in the
    machine's load falls on all of them alike."""
    pairs: dict[float, list[tuple[dict, dict]]] = {latency: [] for latency in latencies_ms}
    with running_sandbox(one_user_library(anime_entries)) as sandbox:
        environment = product_environment(sandbox, rate_limit=UNPACED_RATE_LIMIT)
        for attempt in range(repeat):
            for latency in latencies_ms:
                sandbox.set_latency(latency)
                first = warm_up and attempt == 0 and latency == latencies_ms[0]
                pairs[latency].append(measure_pair(sandbox, environment, warm_up=first))
    return [
        {**_fastest(anime_entries, pairs[latency]), "latency_ms": latency}
        for latency in latencies_ms
    ]


def benchmark_size(anime_entries: int, *, repeat: int = 1, warm_up: bool = True) -> dict[str, Any]:
    """Baseline and import of one library size, each the fastest of `repeat` runs."""
    return benchmark_latencies(anime_entries, latencies_ms=[0.0], repeat=repeat, warm_up=warm_up)[0]


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    smallest, largest = results[0], results[-1]
    growth = largest["import"]["rss_peak_mb"] - smallest["import"]["rss_peak_mb"]
    per_page = [n for r in results for n in r["import"]["round_trips_per_page"]]
    return {
        "requests_within_target": all(
            r["import"]["requests"] <= r["request_target"] for r in results
        ),
        "round_trips_per_page": sorted(set(per_page)),
        "rss_growth_mb": growth,
        "rss_growth_within_target": growth < RSS_GROWTH_TARGET_MB,
        "ratios_within_target": all(r["ratio"] <= TIME_RATIO_TARGET for r in results),
        "ratio_spread": max(r["ratio"] for r in results) - min(r["ratio"] for r in results),
        "client_ms_per_page": [round(r["client_ms_per_page"]) for r in results],
    }


def report(results: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    rows = []
    for r in results:
        imported, baseline = r["import"], r["baseline"]
        per_page = imported["round_trips_per_page"]
        rows.append(
            (
                f"{r['anime_entries']:,}",
                imported["pages"],
                f"{imported['requests']} (≤ {r['request_target']})",
                imported["round_trips_setup_and_first_page"],
                f"{min(per_page)} to {max(per_page)}" if per_page else "-",
                imported["round_trips_finish"],
                f"{baseline['seconds']:.2f}",
                f"{imported['seconds']:.2f}",
                f"**{r['ratio']:.2f}**",
                f"{r['client_ms_per_page']:.0f}",
                f"{imported['rss_peak_mb']:.0f}",
            )
        )
    table = markdown_table(
        (
            "anime entries",
            "pages",
            "requests (target)",
            "DB round trips: setup + page 1",
            "per further page",
            "finish",
            "baseline s",
            "import s",
            "import / baseline",
            "(import - baseline) ms per page",
            "peak RSS MB",
        ),
        rows,
    )
    return (
        f"{table}\n\nRSS growth {results[0]['anime_entries']:,} -> "
        f"{results[-1]['anime_entries']:,}: {summary['rss_growth_mb']:.1f} MB "
        f"(target < {RSS_GROWTH_TARGET_MB}); ratio spread {summary['ratio_spread']:.2f}; "
        f"requests within target: {summary['requests_within_target']}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--measure", choices=("baseline", "import"), help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--kitsu-user", help=argparse.SUPPRESS)
    parser.add_argument("--user-id", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.measure == "baseline":
        token = os.environ[TOKEN_VARIABLE]
        result = download_library(options.api_url, kitsu_user_id=options.kitsu_user, token=token)
        print(json.dumps(result))
        return 0
    if options.measure == "import":
        print(json.dumps(import_library(options.user_id)))
        return 0

    prepare_database()
    before = machine_description()
    sizes = [int(size) for size in options.sizes.split(",")]
    results = []
    for size in sizes:
        print(f"importing {size:,} entries...", file=sys.stderr)
        results.append(benchmark_size(size, repeat=options.repeat))
    summary = summarise(results)
    after = machine_description()
    save_results("import_library", {"machine": before, "machine_after": after, "results": results})
    print(report(results, summary))
    print(f"\nround trips per further page, all sizes: {summary['round_trips_per_page']}")
    print(f"fastest of {options.repeat}; each pair's ratio per size:")
    for r in results:
        print(f"  {r['anime_entries']:>6}: {', '.join(f'{x:.2f}' for x in r['pair_ratios'])}")
    print(load_note(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
