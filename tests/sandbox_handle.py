"""A sandbox Kitsu served from this process's threads, driven over HTTP through its /__sandbox/
control endpoints: the tests' `sandbox` fixtures and the benchmarks (bench/) both use it.

Plain helpers, no pytest: `python -m bench.<name>` imports this module too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import requests

from kitsu_sync.sandbox import SandboxConfig, SandboxServer, SeededCredential, serve_in_thread

HTTP_TIMEOUT = 10


class SandboxHandle:
    """A running sandbox, driven over HTTP through its /__sandbox/ control endpoints."""

    def __init__(self, server: SandboxServer, *, timeout: float = HTTP_TIMEOUT) -> None:
        self.server = server
        self.timeout = timeout
        self.http = requests.Session()
        self._credentials: list[SeededCredential] | None = None

    @classmethod
    @contextmanager
    def serving(cls, config: SandboxConfig) -> Iterator[Self]:
        """Serve a sandbox with `config` in this process's threads; stop it on the way out."""
        handle = cls(serve_in_thread(config))
        try:
            yield handle
        finally:
            handle.close()

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
            method, f"{self.base_url}/__sandbox/{path}", json=payload, timeout=self.timeout
        )
        response.raise_for_status()
        return response.json()

    def all_credentials(self) -> list[SeededCredential]:
        """Every seeded user's login, in seed order (fetched once: seeding never changes them)."""
        if self._credentials is None:
            self._credentials = [
                SeededCredential(**{k: v for k, v in row.items() if k != "login"})
                for row in self.control("GET", "users")
            ]
        return self._credentials

    def credentials(self, index: int = 1) -> SeededCredential:
        """Seeded user `index` (1 is the demo account): `.login`, `.password`, `.user_id`..."""
        return self.all_credentials()[index - 1]

    def reset(self, **options: bool) -> None:
        self.control("POST", "reset", options)

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")

    def requests_log(self, path: str | None = None) -> list[dict[str, Any]]:
        """Requests answered since the stats were cleared: `t` is when the answer left."""
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
        response = self.http.post(f"{self.oauth_url}/token", data=form, timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def auth_headers(self, index: int = 1) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(index)['access_token']}"}

    def close(self) -> None:
        self.http.close()
        self.server.shutdown()
