"""Fixtures for the Kitsu client's unit tests: HTTP is faked at the `requests` seam."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from kitsu_sync.kitsu_api import KitsuClient, RetryPolicy, Transport
from tests.clocks import RecordingSleep
from tests.kitsu_api.payloads import API_URL, OAUTH_URL


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
def kitsu_client(transport: Transport) -> KitsuClient:
    return KitsuClient(transport)
