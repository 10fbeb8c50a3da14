"""What the operator's health check reads: the database, the broker, and beat's last tick.

The beat tick is recorded when the beat-scheduled `dispatch_due_syncs` task finishes on a
worker, so a recent tick means beat, the broker and at least one worker all work. Reports name
no host, URL or exception text: the endpoint is public, and URLs may carry passwords (the
details go to the log instead).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone
from kombu import Connection

from kitsu_sync.models import Heartbeat

logger = logging.getLogger(__name__)

BEAT_TICK = "dispatch_due_syncs"
# Beat may miss a few ticks (workers busy with long syncs) before it counts as stalled.
BEAT_TICKS_MISSED = 3
BEAT_MIN_MAX_AGE = timedelta(minutes=15)
BROKER_TIMEOUT_SECONDS = 2.0

Report = dict[str, Any]


def record_beat_tick(*, now: datetime | None = None) -> None:
    Heartbeat.objects.update_or_create(name=BEAT_TICK, defaults={"at": now or timezone.now()})


def beat_max_age() -> timedelta:
    return max(settings.KITSU_SYNC_DISPATCH_EVERY * BEAT_TICKS_MISSED, BEAT_MIN_MAX_AGE)


def check_database() -> Report:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health check: the database is unreachable: %s", exc)
        return {"ok": False, "detail": "The database cannot be reached."}
    return {"ok": True}


def _filesystem_queue_problem(options: dict[str, Any]) -> str | None:
    for key in ("data_folder_in", "data_folder_out"):
        folder = options.get(key)
        if not folder or not Path(folder).is_dir() or not os.access(folder, os.W_OK):
            return f"The queue folder ({key}) is missing or not writable."
    return None


def check_broker() -> Report:
    url = settings.CELERY_BROKER_URL
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS or {})
    if url.startswith("filesystem://"):
        # kombu's filesystem transport "connects" to anything: look at its folders instead.
        problem = _filesystem_queue_problem(options)
        if problem:
            return {"ok": False, "transport": "filesystem", "detail": problem}
        return {"ok": True, "transport": "filesystem"}
    connection = Connection(url, transport_options=options, connect_timeout=BROKER_TIMEOUT_SECONDS)
    transport = connection.transport_cls
    try:
        with connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS
            )
    except Exception as exc:  # kombu raises its own and the transport's errors alike
        logger.warning("Health check: the broker is unreachable: %s", exc)
        return {"ok": False, "transport": transport, "detail": "The broker cannot be reached."}
    return {"ok": True, "transport": transport}


def check_beat(*, now: datetime) -> Report:
    max_age = beat_max_age()
    report: Report = {"max_age_seconds": int(max_age.total_seconds())}
    try:
        tick = Heartbeat.objects.filter(name=BEAT_TICK).values_list("at", flat=True).first()
    except DatabaseError as exc:
        logger.warning("Health check: the beat tick cannot be read: %s", exc)
        return {
            **report,
            "ok": False,
            "detail": "The beat tick cannot be read: are the migrations applied?",
        }
    if tick is None:
        return {
            **report,
            "ok": False,
            "last_tick": None,
            "detail": "Beat has not completed a tick yet (the first comes one dispatch "
            "interval after beat starts).",
        }
    age = now - tick
    report.update(last_tick=tick.isoformat(), age_seconds=max(int(age.total_seconds()), 0))
    if age > max_age:
        return {
            **report,
            "ok": False,
            "detail": "Beat's last tick is too old: check the beat and worker processes.",
        }
    return {**report, "ok": True}


def health_report(*, now: datetime | None = None) -> Report:
    """{"ok": bool, "checks": {"database": ..., "broker": ..., "beat": ...}}."""
    database = check_database()
    checks = {
        "database": database,
        "broker": check_broker(),
        "beat": check_beat(now=now or timezone.now())
        if database["ok"]
        else {"ok": False, "detail": "Unknown: the database cannot be reached."},
    }
    return {"ok": all(check["ok"] for check in checks.values()), "checks": checks}
