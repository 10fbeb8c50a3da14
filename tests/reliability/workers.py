"""Real Celery worker processes for the fault tests, which they kill, restart and starve.

Unlike `tests.celery_worker.celery_worker` (one worker on a fresh queue), these take a queue
that several workers can share, any pool, any broker and database URL, and run
`tests.reliability.worker_app`, whose production timings the tests shorten.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from kombu import pools

from revenge_site.celery import app
from tests.celery_worker import CeleryWorker
from tests.celery_worker import worker_process as start_worker

WORKER_APP = "tests.reliability.worker_app"


def unique_queue() -> str:
    return f"kitsu-reliability-{uuid.uuid4().hex[:12]}"


def worker_process(
    *,
    log_dir: Path,
    queue: str,
    environment: dict[str, str],
    pool: str = "threads",
    concurrency: int = 2,
    broker_url: str | None = None,
    database_url: str | None = None,
) -> AbstractContextManager[CeleryWorker]:
    """A worker of `WORKER_APP` on `queue`, stopped (if still alive) afterwards."""
    urls = {"REDIS_URL": broker_url, "DATABASE_URL": database_url}
    return start_worker(
        log_dir=log_dir,
        queue=queue,
        environment={**{name: url for name, url in urls.items() if url}, **environment},
        app_module=WORKER_APP,
        pool=pool,
        concurrency=concurrency,
    )


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Send this process's tasks through the broker at `url` (Celery caches its connections)."""
    previous = app.conf.broker_url

    def reset() -> None:
        # kombu keeps its pools in process-wide groups keyed by URL: empty them, then drop the
        # app's references, so that the next send connects afresh to the broker now configured.
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    reset()
    app.conf.broker_url = url
    try:
        yield
    finally:
        reset()
        app.conf.broker_url = previous
