"""Helpers shared by the sync tests (plain functions; each test package wraps them in fixtures).

The sync runs against the sandbox over real HTTP: settings point the process-wide Kitsu client
at it, and users are linked with tokens from the sandbox's own password grant.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from kitsu_sync.kitsu_api import RetryPolicy, TokenResponse, Transport, password_grant
from kitsu_sync.kitsu_client import get_transport
from kitsu_sync.models import AuthFlow, KitsuToken


def point_at_sandbox(settings: Any, sandbox: Any) -> None:
    """Send this process's Kitsu traffic to `sandbox` (a fresh transport picks it up)."""
    settings.KITSU_API_URL = sandbox.api_url
    settings.KITSU_OAUTH_URL = sandbox.oauth_url
    settings.KITSU_CLIENT_ID = sandbox.client_id
    settings.KITSU_CLIENT_SECRET = sandbox.client_secret
    # The shared Redis limiter would pace a test's few hundred writes at 10 per second.
    settings.KITSU_RATE_LIMIT = 10_000
    get_transport.cache_clear()


def sandbox_grant(
    sandbox: Any, credential: Any, transport: Transport | None = None
) -> TokenResponse:
    """A real password grant for a seeded sandbox user, as the sandbox's registered client
    (through `transport`, else a plain one of its own)."""
    return password_grant(
        transport or Transport(api_url=sandbox.api_url, oauth_url=sandbox.oauth_url),
        username=credential.login,
        password=credential.password,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
    )


def link_user(user: Any, sandbox: Any, index: int = 1) -> KitsuToken:
    """Link `user` to seeded sandbox user `index` with a real password grant."""
    credential = sandbox.credentials(index)
    token = sandbox_grant(sandbox, credential)
    return KitsuToken.objects.create(
        user=user,
        kitsu_user_id=credential.user_id,
        kitsu_username=credential.slug,
        access_token=token.access_token,
        refresh_token=token.refresh_token or "",
        token_expires_at=token.expires_at or timezone.now() + timedelta(days=30),
        auth_flow=AuthFlow.PASSWORD,
    )


def make_user(username: str) -> Any:
    return get_user_model().objects.create_user(
        username=username, email=f"{username}@revenge.test", password="not-used-here"
    )


def quiet_transport(sandbox: Any, sleeps: list[float]) -> Transport:
    """A transport to the sandbox whose retry waits are recorded instead of slept, with no
    shared rate limiter (the tests' request counts come from the sandbox)."""
    return Transport(
        api_url=sandbox.api_url,
        oauth_url=sandbox.oauth_url,
        retry=RetryPolicy(attempts=3),
        sleep=sleeps.append,
    )


def _kitsu_write(sandbox: Any, method: str, entry_id: int, index: int, body: Any = None) -> Any:
    headers = {**sandbox.auth_headers(index), "Accept": "application/vnd.api+json"}
    if body is not None:
        headers["Content-Type"] = "application/vnd.api+json"
    response = sandbox.http.request(
        method,
        f"{sandbox.api_url}/library-entries/{entry_id}",
        json=body,
        headers=headers,
        timeout=10,
    )
    response.raise_for_status()
    return response.json() if response.content else None


def kitsu_update_entry(
    sandbox: Any, entry_id: int, attributes: dict[str, Any], *, index: int = 1
) -> dict[str, Any]:
    """Change an entry on Kitsu as its owner would (not through Revenge)."""
    body = {"data": {"type": "libraryEntries", "id": str(entry_id), "attributes": attributes}}
    return _kitsu_write(sandbox, "PATCH", entry_id, index, body)["data"]["attributes"]


def kitsu_delete_entry(sandbox: Any, entry_id: int, *, index: int = 1) -> None:
    _kitsu_write(sandbox, "DELETE", entry_id, index)
