"""Fleet: 1,000 linked users with 200 entries each, synced by real Celery
workers (2 processes) through the Redis broker and the shared Redis rate limiter.

    .venv/bin/python -m bench.fleet [--users 1000] [--entries 200] [--rates 10,50]

For each rate: an empty database, every user linked (real password grants; the benchmark's
own sandbox has its login throttle off), `celery -A revenge_site worker --concurrency 2` as
deployed, then the beat dispatcher (`dispatch_due_syncs`) queues every user at once. The rates are
counted on arrival at the sandbox (bench.harness.ArrivalLog); the sandbox's own request log
stamps each answer as it leaves, after a handling time that varies, and is reported beside.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.db.models import Max

from bench.harness import (
    PAGE_SIZE,
    RESULTS_DIR,
    Sandbox,
    celery_workers,
    cpu_seconds_of_command,
    empty_tables,
    exit_cleanly_on_sigterm,
    library_size_for,
    link_users,
    load_note,
    machine_cpu_seconds,
    machine_description,
    markdown_table,
    prepare_database,
    product_environment,
    running_sandbox,
    save_results,
    wait_for,
)
from kitsu_sync.models import SyncOutcome, SyncRun
from kitsu_sync.sandbox import SandboxConfig
from kitsu_sync.services.schedule import dispatch_due_syncs

USERS = 1_000
ENTRIES = 200
RATES = (10.0, 50.0)
PROCESSES = 2
# About the size of Kitsu's anime catalogue, so that users share some titles, not all.
CATALOG_SIZE = 20_000
# The fleet's targets.
BURST_ALLOWANCE = 1.05
AVERAGE_SHARE = 0.9
TOTAL_ALLOWANCE = 1.15
CPU_SHARES = ("workers", "sandbox_and_dispatcher", "postgres", "redis", "others")


def trailing_counts(times: list[float], width: float = 1.0) -> list[int]:
    """For each request (sorted times), how many fell in the `width` seconds up to it."""
    counts = []
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= width:
            start += 1
        counts.append(end - start + 1)
    return counts


def per_second(times: list[float], origin: float) -> list[int]:
    """Requests in each whole second after `origin`, up to the last request."""
    if not times:
        return []
    counts = [0] * (int(times[-1] - origin) + 1)
    for moment in times:
        counts[int(moment - origin)] += 1
    return counts


def _cpu_now(workers: Any) -> dict[str, float]:
    own = os.times()
    busy, total = machine_cpu_seconds()
    return {
        "workers": workers.cpu_seconds(),
        "sandbox_and_dispatcher": own.user + own.system,
        # The whole server: other databases' work on this machine counts here too.
        "postgres": cpu_seconds_of_command("postgres"),
        "redis": cpu_seconds_of_command("redis-server"),
        "machine_busy": busy,
        "machine_total": total,
    }


def benchmark_rate(
    sandbox: Sandbox,
    *,
    users: int,
    entries: int,
    rate: float,
    processes: int = PROCESSES,
    log_dir: Path = RESULTS_DIR / "logs",
    timeout: float | None = None,
) -> dict[str, Any]:
    empty_tables()
    linked = link_users(sandbox, users)
    environment = {**product_environment(sandbox, rate_limit=rate), "LOG_LEVEL": "INFO"}
    with celery_workers(environment, processes=processes, log_dir=log_dir) as workers:
        sandbox.clear_stats()
        cpu_before = _cpu_now(workers)
        started = time.time()
        queued = dispatch_due_syncs(limit=users)
        dispatched = time.time()
        # Generous: when the workers, not the limit, set the pace, it takes longer than that.
        deadline = timeout if timeout is not None else max(900.0, 4 * users / rate)
        wait_for(
            lambda: SyncRun.objects.exclude(outcome=SyncOutcome.RUNNING).count() >= queued,
            timeout=deadline,
            what=f"{queued} syncs to finish",
            every=0.25,
        )
        cpu_after = _cpu_now(workers)
    log = sandbox.request_log()
    times = sorted(sandbox.arrivals.times)
    answered = sorted(row["t"] for row in log)
    trailing = trailing_counts(times)
    runs = SyncRun.objects.all()
    finished = runs.aggregate(last=Max("finished_at"))["last"].timestamp()
    durations = [
        (run.finished_at - run.started_at).total_seconds()
        for run in runs.only("started_at", "finished_at")
    ]
    outcomes = dict(Counter(runs.values_list("outcome", flat=True)))
    requests_per_sync = list(runs.values_list("requests_made", flat=True))

    total = len(times)
    elapsed = finished - started
    ideal = total / rate
    seconds = per_second(times, started)
    # Whole seconds while work remained: from the dispatch to the last full second of requests.
    working = seconds[:-1] if len(seconds) > 1 else seconds
    wall_cpu = cpu_after["machine_total"] - cpu_before["machine_total"]
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
    ours = ("workers", "sandbox_and_dispatcher", "postgres", "redis")
    cpu["others"] = cpu["machine_busy"] - sum(cpu[name] for name in ours)
    return {
        "rate_limit": rate,
        "users": users,
        "linked": len(linked),
        "queued": queued,
        "outcomes": outcomes,
        "requests": total,
        "request_routes": sorted({row["path"] for row in log}),
        "requests_per_sync_max": max(requests_per_sync, default=0),
        "request_target_per_sync": math.ceil(entries / PAGE_SIZE) + 3,
        "dispatch_seconds": dispatched - started,
        "elapsed_seconds": elapsed,
        "ideal_seconds": ideal,
        "elapsed_over_ideal": elapsed / ideal if ideal else None,
        "requests_answered": len(answered),
        "busiest_second_sliding": max(trailing, default=0),
        "busiest_second_fixed": max(seconds, default=0),
        "busiest_second_by_answer_time": max(trailing_counts(answered), default=0),
        "windows_over_allowance": sum(n > rate * BURST_ALLOWANCE for n in trailing),
        "average_rate": total / (times[-1] - started) if total else 0.0,
        "seconds_below_90_percent": sum(1 for n in working if n < AVERAGE_SHARE * rate),
        "whole_seconds": len(working),
        "sync_seconds_mean": statistics.fmean(durations) if durations else None,
        "sync_seconds_p95": (
            statistics.quantiles(durations, n=20)[-1] if len(durations) > 1 else None
        ),
        "worker_utilisation": sum(durations) / (processes * elapsed) if elapsed else None,
        "cpu_seconds": cpu,
        "worker_cpu_ms_per_sync": 1000 * cpu["workers"] / queued if queued else None,
        "machine_cpu_busy_share": cpu["machine_busy"] / wall_cpu if wall_cpu else None,
    }


def run(*, users: int, entries: int, rates: list[float], processes: int = PROCESSES) -> dict:
    config = SandboxConfig(
        users=users,
        entries=library_size_for(entries),
        catalog_size=max(CATALOG_SIZE, 2 * entries),
        login_throttle_limit=0,
    )
    with running_sandbox(config) as sandbox:
        results = [
            benchmark_rate(sandbox, users=users, entries=entries, rate=rate, processes=processes)
            for rate in rates
        ]
    return {"users": users, "entries": entries, "processes": processes, "rates": results}


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    rate = result["rate_limit"]
    return {
        "never_over_limit": result["busiest_second_sliding"] <= rate * BURST_ALLOWANCE,
        "average_at_least_90_percent": result["average_rate"] >= AVERAGE_SHARE * rate,
        "total_within_115_percent": result["elapsed_over_ideal"] <= TOTAL_ALLOWANCE,
    }


def report(results: dict[str, Any]) -> str:
    rows = []
    for r in results["rates"]:
        cpu = r["cpu_seconds"]
        rows.append(
            (
                f"{r['rate_limit']:g}/s",
                r["requests"],
                f"{r['busiest_second_sliding']} / {r['busiest_second_fixed']} / "
                f"{r['busiest_second_by_answer_time']}",
                f"{r['windows_over_allowance']} of {r['requests']}",
                f"{r['average_rate']:.2f} ({r['average_rate'] / r['rate_limit']:.0%})",
                f"{r['seconds_below_90_percent']} of {r['whole_seconds']}",
                f"{r['elapsed_seconds']:.1f}",
                f"{r['ideal_seconds']:.1f}",
                f"**{r['elapsed_over_ideal']:.2f}**",
                f"{r['sync_seconds_mean']:.2f} / {r['sync_seconds_p95']:.2f}",
                f"{r['worker_utilisation']:.0%}",
                f"{r['machine_cpu_busy_share']:.0%}",
                " / ".join(f"{cpu[name]:.0f}" for name in CPU_SHARES),
            )
        )
    return markdown_table(
        (
            "limit",
            "requests",
            "busiest 1 s: sliding / fixed / by answer time",
            "requests ending a 1 s over limit +5%",
            "average rate (share)",
            "seconds < 90%",
            "total s",
            "requests / limit s",
            "total / ideal",
            "sync s mean / p95",
            "workers busy",
            "machine CPU busy",
            "CPU s: workers / sandbox / PostgreSQL / Redis / other work",
        ),
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--rates", default=",".join(f"{rate:g}" for rate in RATES))
    parser.add_argument("--processes", type=int, default=PROCESSES)
    options = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    prepare_database()
    before = machine_description()
    results = run(
        users=options.users,
        entries=options.entries,
        rates=[float(rate) for rate in options.rates.split(",")],
        processes=options.processes,
    )
    after = machine_description()
    save_results("fleet", {"machine": before, "machine_after": after, **results})
    print(
        f"{options.users:,} users x {options.entries} anime entries, "
        f"{options.processes} worker processes:\n"
    )
    print(report(results))
    for result in results["rates"]:
        print(f"\n{result['rate_limit']:g}/s: {verdicts(result)}; outcomes {result['outcomes']}")
    print(load_note(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
