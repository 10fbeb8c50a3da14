"""Fixtures shared by the whole suite: the Kitsu sandbox over real HTTP, and a fake clock.

- `sandbox_server` (session): one sandbox per test process, with the code grant enabled.
- `sandbox`: the same server, reset (data, stats, faults, throttle, tokens) for this test.
- `sandbox_factory`: extra sandboxes with their own SandboxConfig, stopped after the test.
- `use_sandbox`: `sandbox`, with the Django settings pointing the product at it.
- `fake_clock`: a clock to hand to SandboxConfig(clock=...) and move by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from kitsu_sync.sandbox import SandboxConfig, SandboxServer, SeededCredential, serve_in_thread

HTTP_TIMEOUT = 10


class FakeClock:
    """Seconds since the epoch that only move when told to."""

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SandboxHandle:
    """A running sandbox, driven over HTTP through its /__sandbox/ control endpoints."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.http = requests.Session()
        self._credentials: list[SeededCredential] | None = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def api_url(self) -> str:
        return self.server.api_url

    @property
    def oauth_url(self) -> str:
        return self.server.oauth_url

    @property
    def client_id(self) -> str:
        return self.server.config.client_id

    @property
    def client_secret(self) -> str:
        return self.server.config.client_secret

    @property
    def config(self) -> SandboxConfig:
        return self.server.config

    @property
    def store(self) -> Any:
        """The in-process store, for looking at state directly (prefer HTTP)."""
        return self.server.store

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        response = self.http.request(
            method, f"{self.base_url}/__sandbox/{path}", json=payload, timeout=HTTP_TIMEOUT
        )
        response.raise_for_status()
        return response.json()

    def credentials(self, index: int = 1) -> SeededCredential:
        """Seeded user `index` (1 is the demo account): `.login`, `.password`, `.user_id`..."""
        if self._credentials is None:
            self._credentials = [
                SeededCredential(**{k: v for k, v in row.items() if k != "login"})
                for row in self.control("GET", "users")
            ]
        return self._credentials[index - 1]

    def reset(self, **options: bool) -> None:
        self.control("POST", "reset", options)

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")

    def requests_log(self, path: str | None = None) -> list[dict[str, Any]]:
        return self.control("GET", f"requests?path={path}" if path else "requests")

    def set_faults(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.control("POST", "faults", rules)

    def set_latency(self, ms: float) -> None:
        self.control("POST", "latency", {"ms": ms})

    def revoke_tokens(self, user_id: str) -> int:
        return self.control("POST", "tokens/revoke", {"user_id": user_id})["revoked"]

    def expire_tokens(self, user_id: str) -> int:
        return self.control("POST", "tokens/expire", {"user_id": user_id})["expired"]

    def login(self, index: int = 1, *, with_client: bool = True) -> dict[str, Any]:
        """A password grant for seeded user `index`; the token response body."""
        user = self.credentials(index)
        form = {"grant_type": "password", "username": user.login, "password": user.password}
        if with_client:
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        response = self.http.post(f"{self.oauth_url}/token", data=form, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def auth_headers(self, index: int = 1) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(index)['access_token']}"}


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    server = serve_in_thread(SandboxConfig(auth_code_enabled=True))
    try:
        yield SandboxHandle(server)
    finally:
        server.shutdown()


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
    started: list[SandboxServer] = []

    def start(config: SandboxConfig | None = None, **overrides: Any) -> SandboxHandle:
        server = serve_in_thread(replace(config or SandboxConfig(), **overrides))
        started.append(server)
        return SandboxHandle(server)

    yield start
    for server in started:
        server.shutdown()
