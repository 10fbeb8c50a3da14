"""The Celery app that reliability tests start workers with: the product's own app, with the
production timings that a test cannot wait for shortened from RELIABILITY_* variables.

Production pairs a one-hour broker visibility timeout with a ten-minute sync claim and
minute-long retry delays; these tests keep the same order (claim < visibility) in seconds.
"""

from __future__ import annotations

import os
from datetime import timedelta

import django

from revenge_site.celery import app

django.setup()

from kitsu_sync import tasks  # noqa: E402 - needs Django set up first
from kitsu_sync.services import sync  # noqa: E402

if "RELIABILITY_VISIBILITY_TIMEOUT" in os.environ:
    app.conf.broker_transport_options = {
        "visibility_timeout": float(os.environ["RELIABILITY_VISIBILITY_TIMEOUT"]),
        # Look for lost messages every second, not every 100 s (kombu's default pace).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
if "RELIABILITY_CLAIM_TTL" in os.environ:
    sync.CLAIM_TTL = timedelta(seconds=float(os.environ["RELIABILITY_CLAIM_TTL"]))
if "RELIABILITY_RETRY_SECONDS" in os.environ:
    retry_seconds = float(os.environ["RELIABILITY_RETRY_SECONDS"])
    tasks.RETRY_BASE_SECONDS = retry_seconds
    tasks.RETRY_MAX_SECONDS = retry_seconds * 4
if "RELIABILITY_WORKER_LOST_RETRY_SECONDS" in os.environ:
    tasks.sync_library.default_retry_delay = float(
        os.environ["RELIABILITY_WORKER_LOST_RETRY_SECONDS"]
    )

__all__ = ["app"]
