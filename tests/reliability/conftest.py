"""Fixtures of the fault tests: a sandbox with three-page libraries, a user with a history, and
the services that fail under them (a private Redis, a proxy in front of PostgreSQL). The checks
every fault test ends with are in checks.py; the sandbox, the product pointed at it and users
come from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from kitsu_sync.models import LibraryEntry, SyncOutcome, SyncTrigger
from kitsu_sync.services.sync import run_sync
from tests.reliability.checks import Baseline
from tests.reliability.faults import KITSU_TIMEOUT
from tests.reliability.private_redis import PrivateRedis
from tests.reliability.tcp_proxy import TcpProxy


@pytest.fixture
def paged_kitsu(
    sandbox_factory: Callable[..., Any], kitsu_at: Callable[..., Any], settings: Any
) -> Any:
    """A sandbox whose two users have three-page libraries, and the product's own client aimed
    at it, built from settings with a short KITSU_TIMEOUT."""
    settings.KITSU_TIMEOUT = KITSU_TIMEOUT
    # These tests put a fault on one page, or act between two pages, and count what follows:
    # one page at a time keeps that exact. test_pages_ahead.py covers the default of reading
    # pages ahead under the same faults.
    settings.KITSU_PAGES_IN_FLIGHT = 1
    return kitsu_at(sandbox_factory(users=2, entries=1100))


@pytest.fixture
def partly_imported(kitsu_at: Callable[..., Any]) -> Callable[[Any, Any], Baseline]:
    """Give a linked user a history: a first import (in this process) that Kitsu cut short
    after one page. Returns the user's Baseline."""

    def import_one_page(user: Any, sandbox: Any) -> Baseline:
        kitsu_at(sandbox)
        # A 400 is not retried: the run stops at once, with page 1 stored. Every later page
        # fails, not just the next request: pages are fetched two ahead, in either order.
        sandbox.set_faults(
            [
                {
                    "kind": "status",
                    "status": 400,
                    "path": "/api/edge/library-entries",
                    "after": 1,
                    "count": None,
                }
            ]
        )
        run = run_sync(user_id=user.pk, trigger=SyncTrigger.LINK)
        sandbox.set_faults([])
        assert run.outcome == SyncOutcome.FAILED
        assert LibraryEntry.objects.filter(user=user).count() == 500
        return Baseline.of(user)

    return import_one_page


@pytest.fixture
def worker_logs(tmp_path: Path) -> Path:
    logs = tmp_path / "workers"
    logs.mkdir()
    return logs


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(directory).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_proxy(db: None) -> Iterator[TcpProxy]:
    """A proxy in front of this test run's PostgreSQL server."""
    settings = connection.settings_dict
    proxy = TcpProxy((settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432)))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
