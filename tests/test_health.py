"""The operator's health endpoint: database, broker and beat's last tick, against the real
PostgreSQL and Redis the suite runs on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from kitsu_sync import health, tasks
from kitsu_sync.models import Heartbeat
from tests.celery_worker import current_database_url

ROOT = Path(__file__).resolve().parent.parent
HEALTH = reverse("kitsu_sync:health")

pytestmark = pytest.mark.django_db


def get_health(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get(HEALTH)
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


@pytest.fixture
def beat_ticked() -> None:
    health.record_beat_tick()


def test_it_is_served_at_slash_health():
    assert HEALTH == "/health/"


def test_it_answers_200_when_database_broker_and_beat_are_fine(client, beat_ticked):
    status, body = get_health(client)

    assert status == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"] == {"ok": True, "transport": "redis"}
    beat = body["checks"]["beat"]
    assert beat["ok"] is True
    assert 0 <= beat["age_seconds"] < 60
    assert beat["max_age_seconds"] == 15 * 60


def test_it_needs_no_sign_in_and_is_never_cached(client, beat_ticked):
    response = client.get(HEALTH)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_it_changes_nothing_and_refuses_post(client, beat_ticked):
    assert client.post(HEALTH).status_code == 405
    assert client.head(HEALTH).status_code == 200


def test_an_unreachable_broker_is_503_without_the_broker_url(
    client, settings, beat_ticked, closed_port
):
    settings.CELERY_BROKER_URL = f"redis://:broker-s3cret@127.0.0.1:{closed_port}/0"

    response = client.get(HEALTH)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["broker"] == {
        "ok": False,
        "transport": "redis",
        "detail": "The broker cannot be reached.",
    }
    assert body["checks"]["database"]["ok"] is True
    text = response.content.decode()
    assert "broker-s3cret" not in text
    assert "127.0.0.1" not in text


def test_no_beat_tick_yet_is_503_and_says_so(client):
    status, body = get_health(client)

    assert status == 503
    beat = body["checks"]["beat"]
    assert beat["ok"] is False
    assert beat["last_tick"] is None
    assert "has not completed a tick yet" in beat["detail"]


def test_a_stale_beat_tick_is_503(client, settings):
    settings.KITSU_SYNC_DISPATCH_EVERY = timedelta(minutes=10)
    health.record_beat_tick(now=timezone.now() - timedelta(minutes=31))

    status, body = get_health(client)

    assert status == 503
    beat = body["checks"]["beat"]
    assert beat["ok"] is False
    assert beat["max_age_seconds"] == 30 * 60
    assert beat["age_seconds"] >= 31 * 60
    assert "too old" in beat["detail"]


def test_a_tick_within_three_dispatch_intervals_is_fine(settings):
    settings.KITSU_SYNC_DISPATCH_EVERY = timedelta(minutes=10)
    now = timezone.now()
    health.record_beat_tick(now=now - timedelta(minutes=29))

    assert health.check_beat(now=now)["ok"] is True


def test_the_beat_dispatch_task_records_the_tick():
    before = timezone.now()

    tasks.dispatch_due_syncs()

    tick = Heartbeat.objects.get(name=health.BEAT_TICK)
    assert before <= tick.at <= timezone.now()


def test_each_tick_replaces_the_last():
    first = timezone.now() - timedelta(hours=1)
    health.record_beat_tick(now=first)
    health.record_beat_tick()

    assert Heartbeat.objects.count() == 1
    assert Heartbeat.objects.get().at > first


def test_the_embedded_filesystem_queue_is_checked_by_its_folders(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
    }
    assert health.check_broker() == {"ok": True, "transport": "filesystem"}

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path / "missing"),
        "data_folder_out": str(tmp_path),
    }
    assert health.check_broker()["ok"] is False


def test_it_is_not_redirected_to_https_while_pages_are(client, settings, beat_ticked):
    # The container probe speaks plain HTTP to gunicorn.
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(HEALTH).status_code == 200
    assert client.get(reverse("kitsu_sync:dashboard")).status_code == 301


def health_from_a_fresh_process(*, database_url: str, redis_url: str) -> tuple[str, dict]:
    """GET /health/ in a new process configured by these two URLs."""
    script = (
        "from django.test import Client\n"
        "response = Client().get('/health/')\n"
        "print(response.status_code)\n"
        "print(response.content.decode())\n"
    )
    env = dict(
        os.environ,
        ENV_FILE=str(ROOT / "tests" / "test.env"),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ALLOWED_HOSTS="testserver",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    status, body = result.stdout.split("\n", 1)
    return status, json.loads(body)


@pytest.mark.django_db(transaction=True)
def test_a_redis_url_to_a_closed_port_is_503_from_a_fresh_process(closed_port):
    health.record_beat_tick()
    status, report = health_from_a_fresh_process(
        database_url=current_database_url(),
        redis_url=f"redis://:redis-s3cret@127.0.0.1:{closed_port}/0",
    )

    assert status == "503"
    assert {name: check["ok"] for name, check in report["checks"].items()} == {
        "database": True,
        "broker": False,
        "beat": True,
    }


def test_database_and_broker_down_is_503_from_a_fresh_process(closed_port):
    port = closed_port
    status, report = health_from_a_fresh_process(
        database_url=f"postgres://revenge:db-s3cret@127.0.0.1:{port}/revenge",
        redis_url=f"redis://:redis-s3cret@127.0.0.1:{port}/0",
    )

    assert status == "503"
    assert report["status"] == "unhealthy"
    assert {name: check["ok"] for name, check in report["checks"].items()} == {
        "database": False,
        "broker": False,
        "beat": False,
    }
