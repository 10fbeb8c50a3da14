"""Small HTTP helpers for the sandbox tests (the sandbox fixtures live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests


@pytest.fixture
def get(sandbox) -> Callable[..., requests.Response]:
    """GET a path under /api/edge, with an optional bearer token and query params."""

    def fetch(path: str, token: str | None = None, **params: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(f"{sandbox.api_url}{path}", params=params, headers=headers, timeout=10)

    return fetch


@pytest.fixture
def token(sandbox) -> Callable[[int], str]:
    """An access token for seeded user `index`."""
    return lambda index=1: sandbox.login(index)["access_token"]
