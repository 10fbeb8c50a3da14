"""Fixtures for the Kitsu client's unit tests: HTTP is faked at the `requests` seam."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from kitsu_sync.kitsu_api import KitsuClient, RateLimiter, RetryPolicy, Transport
from tests.kitsu_api.payloads import API_URL, OAUTH_URL


class RecordingSleep:
    """A `sleep` that returns at once and remembers how long it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    """A clock that only moves when something sleeps on it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class CountingRateLimiter(RateLimiter):
    """A real (generous) limiter that counts how often a slot was taken."""

    def __init__(self) -> None:
        super().__init__(10_000, key="counting")
        self.acquired = 0

    def acquire(self, timeout: float | None = None) -> None:
        super().acquire(timeout)
        self.acquired += 1


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def recorded_sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_transport(recorded_sleep: RecordingSleep) -> Callable[..., Transport]:
    def make(**overrides: Any) -> Transport:
        options: dict[str, Any] = {
            "api_url": API_URL,
            "oauth_url": OAUTH_URL,
            "retry": RetryPolicy(attempts=4),
            "sleep": recorded_sleep,
        }
        options.update(overrides)
        return Transport(**options)

    return make


@pytest.fixture
def transport(make_transport: Callable[..., Transport]) -> Transport:
    return make_transport()


@pytest.fixture
def client(transport: Transport) -> KitsuClient:
    return KitsuClient(transport)
