"""Real Celery worker processes, on the real Redis broker and this process's database: for the
tests, the reliability tests (which kill, restart and starve them) and the benchmarks (bench/).

`celery_worker` gives a worker a fresh queue of its own, so that parallel test processes and
messages left behind by other tests never reach it, and points this process's Celery app at
that queue while the worker runs; `worker_process` starts one on a queue the caller names.
Plain helpers, no pytest: `python -m bench.<name>` imports this module too.
"""

from __future__ import annotations

import os
import signal
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
    condition: Callable[[], Any],
    *,
    timeout: float = 60.0,
    what: str = "the condition",
    every: float = 0.05,
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout:.0f} s waiting for {what}.")
        time.sleep(every)


def current_database_url() -> str:
    """The URL of the database this process uses, for the processes it starts."""
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def worker_environment(sandbox: Any, **extra: str) -> dict[str, str]:
    """What a worker needs to sync against `sandbox` (import only), plus `extra` (the
    reliability tests' RELIABILITY_* timings, say)."""
    return {
        "KITSU_API_URL": sandbox.api_url,
        "KITSU_OAUTH_URL": sandbox.oauth_url,
        "KITSU_CLIENT_ID": sandbox.client_id,
        "KITSU_CLIENT_SECRET": sandbox.client_secret,
        "KITSU_SYNC_DIRECTION": "import_only",
        "KITSU_RATE_LIMIT": "1000",
        "LOG_LEVEL": "INFO",
        **extra,
    }


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
    """One `celery worker` process, in its own process group with its pool's children."""

    def __init__(
        self, process: subprocess.Popen[bytes], *, name: str, queue: str, broker_url: str, log: Path
    ) -> None:
        self.process = process
        self.name = name
        self.queue = queue
        self.broker_url = broker_url
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

    def pending_messages(self) -> int:
        return int(redis.Redis.from_url(self.broker_url).llen(self.queue))

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
    app_module: str = "revenge_site",
    pool: str = "threads",
    concurrency: int = 2,
) -> Iterator[CeleryWorker]:
    """Start `celery -A app_module worker` on `queue`; stop it (if still alive) afterwards.

    It uses this process's database and Redis unless `environment` says otherwise.
    """
    name = f"{queue}-{uuid.uuid4().hex[:6]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "revenge_site.settings",
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        **environment,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app_module,
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
        # Its own process group, so that kill() reaches the pool's children too.
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = CeleryWorker(process, name=name, queue=queue, broker_url=env["REDIS_URL"], log=log)
    try:
        wait_for(
            lambda: " ready." in worker.log_text() or process.poll() is not None,
            timeout=60,
            what=f"the Celery worker {name} to start",
        )
        if process.poll() is not None:
            raise RuntimeError(f"The Celery worker exited:\n{worker.log_text()[-4000:]}")
        yield worker
    finally:
        worker.stop()


@contextmanager
def celery_worker(
    *,
    log_dir: Path,
    environment: dict[str, str],
    pool: str = "threads",
    concurrency: int = 2,
    queue_prefix: str = "kitsu-test",
) -> Iterator[CeleryWorker]:
    """A worker of the product's app on a fresh queue, which this process's tasks go to while it
    runs; the queue is deleted afterwards."""
    queue = f"{queue_prefix}-{uuid.uuid4().hex[:12]}"
    try:
        with (
            worker_process(
                log_dir=log_dir,
                queue=queue,
                environment=environment,
                pool=pool,
                concurrency=concurrency,
            ) as worker,
            routed_to(queue),
        ):
            yield worker
    finally:
        # The queue, and the exchange bindings kombu keeps beside it (same name).
        broker = redis.Redis.from_url(environment.get("REDIS_URL", settings.REDIS_URL))
        broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
