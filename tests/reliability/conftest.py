"""Fixtures and checks shared by the fault tests.

Every fault test ends with the same questions, answered here once: is everything the user had
before the fault still there (entries, tokens, sync history), and does Revenge now hold exactly
what Kitsu holds (so no page was skipped and nothing was imported twice)?
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from kitsu_sync.kitsu_client import get_transport
from kitsu_sync.models import KitsuToken, LibraryEntry, SyncOutcome, SyncRun, SyncTrigger
from kitsu_sync.services.sync import run_sync
from tests.reliability.private_redis import PrivateRedis
from tests.reliability.tcp_proxy import TcpProxy
from tests.sync_support import point_at_sandbox

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The client's timeout in these tests (a 500-entry page takes the sandbox about 0.3 s).
KITSU_TIMEOUT = 1.5


def visible_anime_entries(sandbox: Any, index: int = 1) -> list[Any]:
    """Seeded user `index`'s anime entries as Kitsu shows them to their owner."""
    user = sandbox.store.user_by_id(int(sandbox.credentials(index).user_id))
    return [
        entry
        for entry in sandbox.store.entries_by_user[user.id]
        if entry.kind == "anime" and (not entry.nsfw or not user.sfw_filter)
    ]


def kitsu_library(sandbox: Any, index: int = 1) -> dict[int, tuple[int, str, datetime]]:
    """kitsu entry id -> (progress, notes, updatedAt) on Kitsu."""
    return {
        entry.id: (
            entry.progress,
            entry.notes or "",
            EPOCH + timedelta(milliseconds=entry.updated_at),
        )
        for entry in visible_anime_entries(sandbox, index)
    }


def revenge_library(user: Any) -> dict[int, tuple[int, str, datetime]]:
    """kitsu entry id -> (progress, notes, Kitsu's updatedAt) as imported into Revenge."""
    rows = LibraryEntry.objects.filter(user=user).values_list(
        "kitsu_entry_id", "progress", "notes", "kitsu_updated_at"
    )
    library: dict[int, tuple[int, str, datetime]] = {}
    for kitsu_entry_id, progress, notes, updated_at in rows:
        assert kitsu_entry_id not in library, f"entry {kitsu_entry_id} imported twice"
        library[kitsu_entry_id] = (progress, notes, updated_at)
    return library


def assert_in_step_with_kitsu(user: Any, sandbox: Any, index: int = 1) -> None:
    """Revenge holds every entry Kitsu holds, with Kitsu's values, once each."""
    local = revenge_library(user)
    remote = kitsu_library(sandbox, index)
    assert local.keys() == remote.keys(), (
        f"missing {sorted(remote.keys() - local.keys())[:10]}, "
        f"extra {sorted(local.keys() - remote.keys())[:10]}"
    )
    differing = [entry_id for entry_id in remote if local[entry_id] != remote[entry_id]]
    assert not differing, f"entries that differ from Kitsu: {differing[:10]}"
    assert LibraryEntry.objects.filter(user=user).count() == len(remote)


@dataclass(frozen=True)
class Baseline:
    """What a user had before a fault: entries (pk -> values), tokens and sync history."""

    user: Any
    entries: dict[int, tuple[Any, ...]]
    tokens: tuple[str, str]
    runs: dict[int, str]

    @classmethod
    def of(cls, user: Any) -> Baseline:
        link = KitsuToken.objects.get(user=user)
        return cls(
            user=user,
            entries=_entries(user),
            tokens=(link.access_token, link.refresh_token),
            runs=dict(SyncRun.objects.filter(user=user).values_list("pk", "outcome")),
        )

    def assert_intact(
        self, *, changed_on_kitsu: Collection[int] = frozenset(), token_refreshed: bool = False
    ) -> None:
        """Nothing the user had is lost. Entries changed on Kitsu since may differ (a later
        sync brings them); a refreshed token must differ, and both tokens must be stored."""
        now = _entries(self.user)
        lost = self.entries.keys() - now.keys()
        assert not lost, f"{len(lost)} previously imported entries are gone"
        altered = [
            pk
            for pk, values in self.entries.items()
            if now[pk] != values and values[0] not in changed_on_kitsu
        ]
        assert not altered, f"{len(altered)} untouched entries were changed, e.g. {altered[:5]}"
        link = KitsuToken.objects.get(user=self.user)
        assert link.access_token
        assert link.refresh_token
        if token_refreshed:
            assert (link.access_token, link.refresh_token) != self.tokens
        else:
            assert (link.access_token, link.refresh_token) == self.tokens
        history = dict(SyncRun.objects.filter(user=self.user).values_list("pk", "outcome"))
        for pk, outcome in self.runs.items():
            assert history.get(pk) == outcome, f"sync run {pk} was lost or rewritten"


def _entries(user: Any) -> dict[int, tuple[Any, ...]]:
    return {
        pk: rest
        for pk, *rest in LibraryEntry.objects.filter(user=user).values_list(
            "pk", "kitsu_entry_id", "status", "progress", "score", "notes", "updated_at"
        )
    }


def finished_runs(user: Any) -> list[SyncRun]:
    return list(
        SyncRun.objects.filter(user=user).exclude(outcome=SyncOutcome.RUNNING).order_by("pk")
    )


def assert_readable(reason: str) -> None:
    """A reason a person can act on: a sentence, no traceback, no repr of an exception."""
    assert reason[:1].isupper(), reason
    for sign_of_a_dump in ("Traceback", "Error(", "<", "\n"):
        assert sign_of_a_dump not in reason, reason
    assert len(reason) < 400, reason


@pytest.fixture
def retry_waits() -> list[float]:
    """The waits the client asked for between attempts (recorded, not slept)."""
    return []


@pytest.fixture
def kitsu(
    sandbox_factory: Any, settings: Any, monkeypatch: Any, retry_waits: list[float]
) -> Iterator[Any]:
    """A sandbox whose two users have three-page libraries, and the product's own client aimed
    at it, built from settings with a short KITSU_TIMEOUT."""
    sandbox = sandbox_factory(users=2, entries=1100)
    point_at_sandbox(settings, sandbox)
    settings.KITSU_SYNC_DIRECTION = "import_only"
    settings.KITSU_TIMEOUT = KITSU_TIMEOUT
    # These tests put a fault on one page, or act between two pages, and count what follows:
    # one page at a time keeps that exact. test_pages_ahead.py covers the default of reading
    # pages ahead under the same faults.
    settings.KITSU_PAGES_IN_FLIGHT = 1
    monkeypatch.setattr(get_transport(), "_sleep", retry_waits.append)
    yield sandbox
    get_transport.cache_clear()


@pytest.fixture
def partly_imported(settings: Any) -> Iterator[Callable[[Any, Any], Baseline]]:
    """Give a linked user a history: a first import (in this process) that Kitsu cut short
    after one page. Returns the user's Baseline."""

    def import_one_page(user: Any, sandbox: Any) -> Baseline:
        point_at_sandbox(settings, sandbox)
        settings.KITSU_SYNC_DIRECTION = "import_only"
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

    yield import_one_page
    get_transport.cache_clear()


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


def worker_environment(sandbox: Any, **extra: str) -> dict[str, str]:
    """What a worker needs to sync against `sandbox`, plus the RELIABILITY_* timings."""
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
