"""Fixtures for the sync services: the sandbox wired in, and linked users as factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kitsu_sync.kitsu_api import Transport
from kitsu_sync.kitsu_client import get_transport
from tests.sync_support import link_user, make_user, point_at_sandbox, quiet_transport


@pytest.fixture
def retry_sleeps() -> list[float]:
    """Every retry wait the Kitsu client asked for (none is actually slept)."""
    return []


@pytest.fixture
def kitsu(
    sandbox: Any, settings: Any, monkeypatch: Any, retry_sleeps: list[float]
) -> Iterator[Any]:
    """The sandbox, reset, with this process's Kitsu client pointed at it."""
    _wire(sandbox, settings, monkeypatch, retry_sleeps)
    yield sandbox
    get_transport.cache_clear()


@pytest.fixture
def kitsu_factory(
    sandbox_factory: Callable[..., Any],
    settings: Any,
    monkeypatch: Any,
    retry_sleeps: list[float],
) -> Iterator[Callable[..., Any]]:
    """Start a sandbox with its own SandboxConfig overrides and point the client at it."""

    def start(**overrides: Any) -> Any:
        sandbox = sandbox_factory(**overrides)
        _wire(sandbox, settings, monkeypatch, retry_sleeps)
        return sandbox

    yield start
    get_transport.cache_clear()


def _wire(sandbox: Any, settings: Any, monkeypatch: Any, sleeps: list[float]) -> None:
    point_at_sandbox(settings, sandbox)
    settings.KITSU_SYNC_DIRECTION = "import_only"
    transport: Transport = quiet_transport(sandbox, sleeps)
    monkeypatch.setattr("kitsu_sync.kitsu_client.get_transport", lambda: transport)


@pytest.fixture
def linked_user(kitsu: Any, db: None) -> Callable[..., Any]:
    """Make a Revenge user linked to seeded sandbox user `index` (1 is the demo account)."""

    def make(username: str = "alice", index: int = 1, sandbox: Any = None) -> Any:
        user = make_user(username)
        link_user(user, sandbox or kitsu, index)
        return user

    return make
