"""A real Celery worker process for tests, on the real Redis broker and the test database.

Each worker consumes its own queue (a unique name), so parallel test processes and messages
left behind by other tests never reach it; this process's Celery app is pointed at that queue
while the worker runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from revenge_site.celery import app

ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 60.0, what: str = "the condition"
) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.")
        time.sleep(0.05)


def database_url_of_tests() -> str:
    """The URL of the database this test process uses (pytest-django's test database)."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@contextmanager
def routed_to(queue: str) -> Iterator[None]:
    """Send this process's tasks to `queue` (Celery caches its queue setup: reset it)."""
    previous = app.conf.task_default_queue

    def reset() -> None:
        for cached in ("queues", "default_queue", "router"):
            app.amqp.__dict__.pop(cached, None)

    app.conf.task_default_queue = queue
    reset()
    try:
        yield
    finally:
        app.conf.task_default_queue = previous
        reset()


class CeleryWorker:
    def __init__(self, process: subprocess.Popen[bytes], queue: str, log: Path) -> None:
        self.process = process
        self.queue = queue
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def pending_messages(self) -> int:
        return int(redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(self.queue))


@contextmanager
def celery_worker(
    *, log_dir: Path, environment: dict[str, str], concurrency: int = 2
) -> Iterator[CeleryWorker]:
    """Start `celery -A revenge_site worker` on a fresh queue and stop it afterwards."""
    queue = f"kitsu-test-{uuid.uuid4().hex[:12]}"
    log = log_dir / f"{queue}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revenge_site.settings",
        "DATABASE_URL": database_url_of_tests(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        **environment,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "revenge_site",
        "worker",
        "--queues",
        queue,
        "--hostname",
        f"{queue}@%h",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    worker = CeleryWorker(process, queue, log)
    try:
        wait_for(
            lambda: " ready." in worker.log_text() or process.poll() is not None,
            timeout=60,
            what="the Celery worker to start",
        )
        if process.poll() is not None:
            raise AssertionError(f"The Celery worker exited:\n{worker.log_text()[-4000:]}")
        with routed_to(queue):
            yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)
