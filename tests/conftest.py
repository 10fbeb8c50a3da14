"""Fixtures shared by the whole suite: the Kitsu sandbox over real HTTP, and a fake clock.

- `sandbox_server` (session): one sandbox per test process, with the code grant enabled.
- `sandbox`: the same server, reset (data, stats, faults, throttle, tokens) for this test.
- `sandbox_factory`: extra sandboxes with their own SandboxConfig, stopped after the test.
- `use_sandbox`: `sandbox`, with the Django settings pointing the product at it.
- `fake_clock`: a clock to hand to SandboxConfig(clock=...) and move by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import pytest

from kitsu_sync.sandbox import SandboxConfig
from tests.sandbox_handle import SandboxHandle


class FakeClock:
    """Seconds since the epoch that only move when told to."""

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    with SandboxHandle.serving(SandboxConfig(auth_code_enabled=True)) as handle:
        yield handle


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def use_sandbox(sandbox: SandboxHandle, settings: Any) -> SandboxHandle:
    """The reset sandbox, with KITSU_* settings aimed at it for this test."""
    settings.KITSU_API_URL = sandbox.api_url
    settings.KITSU_OAUTH_URL = sandbox.oauth_url
    settings.KITSU_CLIENT_ID = sandbox.client_id
    settings.KITSU_CLIENT_SECRET = sandbox.client_secret
    return sandbox


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxHandle]]:
    with ExitStack() as started:

        def start(config: SandboxConfig | None = None, **overrides: Any) -> SandboxHandle:
            config = replace(config or SandboxConfig(), **overrides)
            return started.enter_context(SandboxHandle.serving(config))

        yield start
