"""Each benchmark at a tiny size: its figures come out, and its request-count targets hold.

The full-size runs are `python -m bench.<name>` (bench/README.md); these run the same code (the
sandbox over real HTTP, measurement processes, real Celery workers) on the test database, so
that the benchmarks keep working. Timing targets are the full runs' business, not these.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pytest

from bench import (
    export,
    fleet,
    import_library,
    incremental,
    latency,
    list_page,
    mapping_datasets,
    webhooks,
)
from bench.harness import library_size_for, running_sandbox
from kitsu_sync.models import LibraryEntry
from kitsu_sync.sandbox import SandboxConfig
from tests.celery_worker import current_database_url

# Measurement processes and workers read what this process wrote: no test transaction. The
# benchmarks aim the process-wide Kitsu client at their own sandboxes: a fresh one each time.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("fresh_transport"),
]


def test_the_import_benchmark_reads_each_size_in_its_pages_with_constant_round_trips() -> None:
    results = [import_library.benchmark_size(size, warm_up=False) for size in (600, 1_100)]

    for result in results:
        size, imported = result["anime_entries"], result["import"]
        assert imported["fetched"] == result["baseline"]["entries"] == size
        assert imported["pages"] == imported["list_requests"] == math.ceil(size / 500)
        assert imported["requests"] <= result["request_target"] == math.ceil(size / 500) + 3
        assert imported["same_pages_as_baseline"]
        assert result["ratio"] == imported["seconds"] / result["baseline"]["seconds"] > 0
        assert imported["rss_peak_mb"] >= imported["rss_before_mb"] > 0
    summary = import_library.summarise(results)
    # Every page after the first costs the same round trips, whatever the library's size.
    assert len(summary["round_trips_per_page"]) == 1
    assert summary["requests_within_target"]
    assert "| 1,100 | 3 | 3 (≤ 6) |" in import_library.report(results, summary)


def test_the_incremental_benchmark_fetches_and_writes_only_what_changed(settings: Any) -> None:
    cases = incremental.run(entries=700, changes=[3, 520], settings=settings)["cases"]

    unchanged, few, many = cases
    assert not unchanged["full"]
    assert unchanged["requests"] <= 2
    assert unchanged["library_rows_written"] == 0
    assert unchanged["bookkeeping_rows_written"] > 0  # the run's own record is still kept
    for case in (few, many):
        assert case["library_rows_written"] == case["changes"]
        assert case["only_changed_rows_written"]
        assert case["requests"] == case["list_requests"] == math.ceil(case["fetched"] / 500)
    assert many["requests"] == 2
    assert "| 520 |" in incremental.report({"cases": cases})


def test_the_export_benchmark_costs_one_write_per_changed_entry(settings: Any) -> None:
    case = export.run(entries=400, changes=[3], settings=settings)["cases"][0]

    for sent_by in ("batched", "at_once"):
        costs = case[sent_by]
        assert costs["write_requests"] == costs["pushed"] == 3
        assert costs["read_one_requests"] == 0
        assert costs["requests"] <= costs["target"]
    assert case["batched"]["list_requests"] == 1
    assert case["at_once"]["list_requests"] == 0


def test_the_latency_benchmark_sets_the_import_against_its_round_trip_budget() -> None:
    results = latency.run(entries=400, latency_ms=100, warm_up=False)

    slow = results["with_latency"]["import"]
    assert slow["requests"] == slow["pages"] == 1
    assert results["budget_seconds"] == pytest.approx((1 + 3) * 0.100)
    # The response really waited: the import cannot beat its page's latency.
    assert slow["seconds"] >= 0.100
    assert results["import_over_budget"] == slow["seconds"] / results["budget_seconds"]
    assert results["without_latency"]["import"]["requests"] == 1


def test_the_fleet_benchmark_syncs_every_user_through_the_shared_limiter(
    tmp_path: Path,
) -> None:
    users, rate = 21, 7.0  # a rate no other test uses: its own Redis limiter key
    config = SandboxConfig(users=users, entries=library_size_for(20), login_throttle_limit=0)
    with running_sandbox(config) as sandbox:
        result = fleet.benchmark_rate(
            sandbox, users=users, entries=20, rate=rate, log_dir=tmp_path, timeout=60
        )

    assert result["outcomes"] == {"success": users}
    assert result["requests"] == result["requests_answered"] == users
    assert result["requests_per_sync_max"] == 1 <= result["request_target_per_sync"]
    assert LibraryEntry.objects.values("user").distinct().count() == users
    # 21 requests at 7 per moving second cannot all be sent within 2 seconds.
    assert result["elapsed_seconds"] >= (users - rate) / rate
    assert 0 < result["busiest_second_fixed"] <= result["busiest_second_sliding"]
    assert result["average_rate"] > 0
    assert result["elapsed_over_ideal"] > 0
    assert f"{rate:g}/s" in fleet.report({"rates": [result]})


def test_the_mapping_datasets_benchmark_loads_both_files_and_resolves_from_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loading child process uses this test's database.
    monkeypatch.setenv("DATABASE_URL", current_database_url())

    results = mapping_datasets.run(anime_lists=300, fribb=600, resolutions=20)

    assert results["records"] == 900
    assert results["load"]["peak_rss_mb"] > 0
    assert "anime-lists: loaded 300 records" in results["load"]["output"]
    assert "unchanged" in results["unchanged_reload"]["output"]
    resolution = results["resolution"]
    assert resolution["matched"] == 20
    assert resolution["queries_per_resolution"] <= 3
    assert "| 300 | 600 |" in mapping_datasets.report(results)


def test_the_webhooks_benchmark_delivers_each_change_once_through_gunicorn_and_a_worker(
    settings: Any,
) -> None:
    settings.KITSU_SYNC_DIRECTION = "import_only"  # the benchmark sets two_way; restored after
    options = argparse.Namespace(
        users=3,
        senders=3,
        entries=20,
        burst=9,
        sustained=12,
        rate=20.0,
        in_flight=20,
        web_workers=1,
        web_threads=2,
        concurrency=1,
        rate_limit=100_000.0,
    )

    results = webhooks.run(options)

    for name, sent in (("burst", 9), ("sustained", 12)):
        phase = results["phases"][name]
        assert phase["answers"]["statuses"] == {"200": sent}
        assert phase["judge"]["exactly_once"], phase["judge"]
        assert phase["judge"]["progress_not_last_sent"] == 0, phase["judge"]
        assert phase["kitsu"]["recorded"] == phase["kitsu"]["delivered"]
    assert "delivered exactly once: yes" in "\n".join(webhooks.verdicts(results))


def test_the_list_page_benchmark_renders_the_same_rows_with_the_same_queries() -> None:
    results = list_page.run(entries=200, repeat=2)

    for size in ("small", "large"):
        assert results[size]["rows"] == 50
        assert results[size]["median_ms"] > 0
    assert results["same_queries"]
    assert results["ratio"] == results["large"]["median_ms"] / results["small"]["median_ms"]
    assert "| 200 |" in list_page.report(results)
