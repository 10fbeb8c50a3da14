"""Simulated latency: with the sandbox adding 150 ms to every response (a
realistic round trip to kitsu.app), a 10,000-entry import takes at most (ceil(N/500) + 3)
round trips of time, plus 20%.

    .venv/bin/python -m bench.latency [--entries 10000] [--latency-ms 150] [--repeat 1]

The same import as bench.import_library (a fresh process, an empty database), with the
latency and without it in turn, each next to its own plain-download baseline. The issue's budget
counts round trips only, as if Kitsu answered in no time; the sandbox takes a while to serve a
500-entry page, so the figures also set the import against that budget plus the plain download
of the same pages without latency (the serving time).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from bench.harness import (
    PAGE_SIZE,
    load_note,
    machine_description,
    markdown_table,
    prepare_database,
    save_results,
)
from bench.import_library import benchmark_latencies

ENTRIES = 10_000
LATENCY_MS = 150.0
# The target: the round-trip budget "plus 20%".
ALLOWANCE = 1.2


def round_trip_budget(entries: int, latency_ms: float) -> float:
    """Seconds of (ceil(N/500) + 3) round trips."""
    return (math.ceil(entries / PAGE_SIZE) + 3) * latency_ms / 1000


def run(
    *, entries: int, latency_ms: float, repeat: int = 1, warm_up: bool = True
) -> dict[str, Any]:
    slow, fast = benchmark_latencies(
        entries, latencies_ms=[latency_ms, 0.0], repeat=repeat, warm_up=warm_up
    )
    budget = round_trip_budget(entries, latency_ms)
    seconds = slow["import"]["seconds"]
    return {
        "entries": entries,
        "latency_ms": latency_ms,
        "with_latency": slow,
        "without_latency": fast,
        "budget_seconds": budget,
        "import_over_budget": seconds / budget,
        "baseline_over_budget": slow["baseline"]["seconds"] / budget,
        # What the latency itself cost the import: pages x latency when each page waits in turn.
        "latency_cost_seconds": seconds - fast["import"]["seconds"],
        "budget_with_serving_seconds": budget + fast["baseline"]["seconds"],
        "import_over_budget_with_serving": seconds / (budget + fast["baseline"]["seconds"]),
        "within_target": seconds <= budget * ALLOWANCE,
    }


def report(results: dict[str, Any]) -> str:
    slow, fast = results["with_latency"], results["without_latency"]
    budget = results["budget_seconds"]
    rows = [
        (
            f"{results['latency_ms']:.0f} ms",
            slow["import"]["pages"],
            slow["import"]["requests"],
            f"{budget:.2f}",
            f"{slow['baseline']['seconds']:.2f} ({results['baseline_over_budget']:.2f})",
            f"{slow['import']['seconds']:.2f} (**{results['import_over_budget']:.2f}**)",
            f"{fast['import']['seconds']:.2f}",
            f"{fast['baseline']['seconds']:.2f}",
            f"{results['latency_cost_seconds']:.2f}",
            f"{results['budget_with_serving_seconds']:.2f} "
            f"(**{results['import_over_budget_with_serving']:.2f}**)",
        )
    ]
    return markdown_table(
        (
            "latency per response",
            "pages",
            "requests",
            "budget s: (pages+3) round trips",
            "baseline s (/ budget)",
            f"import s (/ budget, target ≤ {ALLOWANCE})",
            "import s without latency",
            "baseline s without latency",
            "import s with - without latency",
            "budget + serving time s (import / it)",
        ),
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--repeat", type=int, default=1)
    options = parser.parse_args(argv)
    prepare_database()
    before = machine_description()
    results = run(entries=options.entries, latency_ms=options.latency_ms, repeat=options.repeat)
    after = machine_description()
    save_results("latency", {"machine": before, "machine_after": after, **results})
    print(f"{options.entries:,}-entry import, one user:\n")
    print(report(results))
    print(load_note(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
