"""A redis-server of a test's own, on a free port, that the test may stop and start at will.

Configured like the production compose file's Redis (append-only file on), so that a restart
keeps what was queued, as it would there.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import redis

from tests.celery_worker import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> PrivateRedis:
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self._answers, timeout=20, what=f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        """A clean stop (SIGTERM: Redis writes its append-only file and exits)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"redis-server exited: {(self.directory / 'redis.log').read_text()[-2000:]}"
            )
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False
