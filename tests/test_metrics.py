"""The Prometheus endpoint: off by default, protected, and figures that follow real events (a
sync against the sandbox, an outbox change, a counter from a Celery worker process)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from kitsu_sync import tasks
from kitsu_sync.db import queued_expiry
from kitsu_sync.metrics import endpoint_label
from kitsu_sync.models import (
    Anime,
    KitsuOutbox,
    KitsuSyncState,
    OutboxAction,
    SyncOutcome,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from kitsu_sync.services.sync import run_sync
from tests.celery_worker import celery_worker, wait_for, worker_environment
from tests.sync_support import finished_runs

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-the-tests-0123456789"
LIBRARY = "/api/edge/library-entries"

pytestmark = pytest.mark.django_db


@pytest.fixture
def metrics_on(settings: Any) -> Any:
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    return settings


def scrape(client: Any, token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition as {(sample name, sorted labels): value}."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- off by default, and protected ----------------------------------------------------------


def test_metrics_are_off_by_default(client):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_enabling_metrics_without_a_token_or_an_address_refuses_to_start():
    environment = {
        **os.environ,
        "ENV_FILE": "tests/test.env",
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": "",
        "METRICS_ALLOWED_IPS": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import revenge_site.settings"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "METRICS_TOKEN or METRICS_ALLOWED_IPS" in result.stderr


def test_an_empty_multiprocess_folder_setting_means_off_and_writes_no_files(tmp_path):
    # .env.example lists PROMETHEUS_MULTIPROC_DIR= (empty); prometheus_client alone would take
    # the variable's mere presence as multiprocess mode and write into the current folder.
    environment = {**os.environ, "ENV_FILE": str(ROOT / "tests/test.env")}
    environment["PROMETHEUS_MULTIPROC_DIR"] = ""
    environment["PYTHONPATH"] = str(ROOT)
    script = (
        "import django; django.setup(); from kitsu_sync import metrics; "
        "metrics.RATE_LIMITER_WAIT.observe(0.5)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**environment, "DJANGO_SETTINGS_MODULE": "revenge_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_scrape_without_the_token_or_with_a_wrong_one_is_refused(client, metrics_on):
    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    basic = client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")

    assert [missing.status_code, wrong.status_code, basic.status_code] == [401, 401, 401]
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert b"kitsu_" not in wrong.content


def test_a_scrape_with_the_token_gets_the_exposition_uncached(client, metrics_on):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert b"# TYPE kitsu_syncs_total counter" in response.content
    assert "no-cache" in response["Cache-Control"]


def test_an_address_outside_the_allowlist_is_refused_even_with_the_token(client, metrics_on):
    metrics_on.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 403


def test_an_allowed_address_without_a_token_configured_may_scrape(client, metrics_on):
    metrics_on.METRICS_TOKEN = ""
    metrics_on.METRICS_ALLOWED_IPS = ["127.0.0.0/8", "::1"]

    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 403


def test_with_both_configured_an_allowed_address_still_needs_the_token(client, metrics_on):
    metrics_on.METRICS_ALLOWED_IPS = ["127.0.0.1"]

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_endpoint_labels_drop_ids_so_that_series_stay_few():
    assert endpoint_label("library-entries/123") == "library-entries/:id"
    assert endpoint_label("/anime/1/mappings") == "anime/:id/mappings"
    assert endpoint_label("oauth/token") == "oauth/token"
    assert endpoint_label("a/b/c/d/e") == "a/b/c"


# --- figures that follow real events ----------------------------------------------------------


def test_a_sync_against_kitsu_shows_in_the_figures(client, metrics_on, kitsu, link_user, make_user):
    user = make_user()
    # Due for an early refresh, so the run refreshes the token first.
    link_user(user, kitsu, expires_in=timedelta(days=1))
    # Kitsu's Rack::Attack answers the first library request with 429, then lets it through.
    kitsu.set_faults([{"kind": "rate_limit", "path": LIBRARY, "method": "GET", "count": 1}])
    before = scrape(client)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("kitsu_syncs_total", outcome="success") == 1
    assert grew("kitsu_sync_duration_seconds_count", outcome="success") == 1
    assert grew("kitsu_sync_duration_seconds_bucket", outcome="success", le="+Inf") == 1
    library = {"endpoint": "library-entries", "method": "GET"}
    assert grew("kitsu_requests_total", status="429", **library) == 1
    assert grew("kitsu_requests_total", status="200", **library) >= 1
    assert grew("kitsu_retries_total", endpoint="library-entries", reason="rate_limited") == 1
    assert grew("kitsu_requests_total", endpoint="oauth/token", method="POST", status="200") == 1
    assert grew("kitsu_token_refreshes_total", result="refreshed") == 1
    assert grew("kitsu_rate_limiter_wait_seconds_count") >= run.requests_made
    assert value(after, "kitsu_links", state="ok") == 1
    assert value(after, "kitsu_sync_states", status="success") == 1
    assert value(after, "kitsu_metrics_database_up") == 1


def test_sync_durations_fall_into_their_buckets(client, metrics_on, make_user):
    user = make_user()
    for seconds, outcome in ((42, SyncOutcome.SUCCESS), (700, SyncOutcome.FAILED)):
        run = SyncRun.objects.create(
            user=user, trigger=SyncTrigger.SCHEDULE, direction="import_only", outcome=outcome
        )
        SyncRun.objects.filter(pk=run.pk).update(
            finished_at=run.started_at + timedelta(seconds=seconds)
        )

    samples = scrape(client)

    bucket = "kitsu_sync_duration_seconds_bucket"
    assert value(samples, bucket, outcome="success", le="30.0") == 0
    assert value(samples, bucket, outcome="success", le="60.0") == 1
    assert value(samples, "kitsu_sync_duration_seconds_sum", outcome="success") == 42
    assert value(samples, bucket, outcome="failed", le="600.0") == 0
    assert value(samples, bucket, outcome="failed", le="1800.0") == 1
    assert value(samples, "kitsu_syncs_total", outcome="failed") == 1
    assert value(samples, "kitsu_syncs_total", outcome="partial") == 0


def test_a_rejected_refresh_counts_a_relink_event(client, metrics_on, kitsu, link_user, make_user):
    user = make_user()
    link = link_user(user, kitsu, expires_in=timedelta(days=1))
    kitsu.revoke_tokens(link.kitsu_user_id)
    before = scrape(client)

    run = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)

    assert run.outcome == SyncOutcome.FAILED
    after = scrape(client)
    rejected = ("kitsu_token_refreshes_total", {"result": "rejected"})
    relinks = ("kitsu_relink_events_total", {"reason": "refresh_rejected"})
    for name, labels in (rejected, relinks):
        assert value(after, name, **labels) - value(before, name, **labels) == 1
    assert value(after, "kitsu_links", state="needs_relink") == 1
    assert value(after, "kitsu_sync_states", status="needs_relink") == 1


def test_a_queued_outbox_change_shows_as_backlog_with_its_age(client, metrics_on, make_user):
    user = make_user()
    anime = Anime.objects.create(kitsu_id=1, title="Cowboy Bebop")
    queued = timezone.now() - timedelta(minutes=10)
    KitsuOutbox.objects.create(
        user=user,
        anime=anime,
        action=OutboxAction.WRITE,
        queued_at=queued,
        next_attempt_at=queued,
    )
    assert value(scrape(client), "kitsu_outbox_changes", state="waiting") == 1

    samples = scrape(client)

    assert value(samples, "kitsu_outbox_due") == 1
    assert value(samples, "kitsu_outbox_changes", state="failed") == 0
    assert 600 <= value(samples, "kitsu_outbox_oldest_change_age_seconds") < 700


def test_queued_syncs_show_as_the_queue_with_the_oldest_wait(client, metrics_on, make_user):
    user = make_user()
    KitsuSyncState.objects.create(user=user, last_sync_status=SyncStatus.QUEUED)
    KitsuSyncState.objects.filter(user=user).update(
        updated_at=timezone.now() - timedelta(minutes=3)
    )

    samples = scrape(client)

    assert value(samples, "kitsu_sync_states", status="queued") == 1
    assert 180 <= value(samples, "kitsu_oldest_queued_sync_age_seconds") < 240


def test_a_queued_mark_whose_message_was_lost_is_not_counted_as_waiting(
    client, metrics_on, make_user
):
    user = make_user()
    KitsuSyncState.objects.create(user=user, last_sync_status=SyncStatus.QUEUED)
    KitsuSyncState.objects.filter(user=user).update(
        updated_at=timezone.now() - queued_expiry() - timedelta(minutes=1)
    )

    samples = scrape(client)

    assert value(samples, "kitsu_oldest_queued_sync_age_seconds") == 0


# --- across processes -------------------------------------------------------------------------


@pytest.mark.slow
def test_counts_made_in_a_celery_worker_process_reach_the_web_scrape(
    transactional_db, client, metrics_on, kitsu, linked_user, tmp_path
):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    user = linked_user()
    environment = worker_environment(kitsu, PROMETHEUS_MULTIPROC_DIR=str(folder))

    with celery_worker(log_dir=tmp_path / "celery", environment=environment):
        tasks.sync_library.delay(user.pk, SyncTrigger.MANUAL, False)
        [run] = wait_for(lambda: finished_runs(user), what="the worker's sync")

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert any(path.name.startswith("counter_") for path in folder.iterdir())
    metrics_on.PROMETHEUS_MULTIPROC_DIR = str(folder)
    samples = scrape(client)
    library = {"endpoint": "library-entries", "method": "GET", "status": "200"}
    # This test process counted nothing in that folder: these came from the worker.
    assert value(samples, "kitsu_requests_total", **library) >= 1
    assert value(samples, "kitsu_rate_limiter_wait_seconds_count") >= run.requests_made
    assert value(samples, "kitsu_syncs_total", outcome="success") == 1
