"""Real Celery worker processes for the fault tests, which they kill, restart and starve.

Unlike `tests.celery_worker.celery_worker` (one worker for a module), these take a queue that
several workers can share, any pool, any broker and database URL, and they run in their own
process group so that a test can SIGKILL a whole worker, children included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from kombu import pools

from revenge_site.celery import app
from tests.celery_worker import ROOT, database_url_of_tests, wait_for

WORKER_APP = "tests.reliability.worker_app"


def unique_queue() -> str:
    return f"kitsu-reliability-{uuid.uuid4().hex[:12]}"


class WorkerProcess:
    """One `celery worker` process (with its pool children, for prefork)."""

    def __init__(self, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
        self.process = process
        self.name = name
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        """The pool's child processes (prefork), read from /proc."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no cleanup, no acknowledgement."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def worker_process(
    *,
    log_dir: Path,
    queue: str,
    environment: dict[str, str],
    pool: str = "threads",
    concurrency: int = 2,
    broker_url: str | None = None,
    database_url: str | None = None,
) -> Iterator[WorkerProcess]:
    """Start a worker of `WORKER_APP` on `queue`; stop it (if still alive) afterwards."""
    name = f"{queue}-{uuid.uuid4().hex[:6]}"
    log = log_dir / f"{name}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revenge_site.settings",
        "DATABASE_URL": database_url or database_url_of_tests(),
        "REDIS_URL": broker_url or settings.REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        **environment,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        WORKER_APP,
        "worker",
        "--queues",
        queue,
        "--hostname",
        f"{name}@%h",
        "--pool",
        pool,
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
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(process, name, log)
    try:
        wait_for(
            lambda: " ready." in worker.log_text() or process.poll() is not None,
            timeout=60,
            what=f"the Celery worker {name} to start",
        )
        if process.poll() is not None:
            raise AssertionError(f"The Celery worker exited:\n{worker.log_text()[-4000:]}")
        yield worker
    finally:
        worker.stop()


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
