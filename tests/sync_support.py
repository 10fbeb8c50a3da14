"""Plain helpers for the tests that sync against the sandbox over real HTTP (the fixtures that
point the product at it and link users to it are in tests/conftest.py).

Plain functions, no pytest: `python -m bench.<name>` imports this module too.
"""

from __future__ import annotations

from typing import Any

from kitsu_sync.kitsu_api import TokenResponse, Transport, password_grant
from kitsu_sync.models import SyncOutcome, SyncRun


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


def visible_anime_entries(sandbox: Any, index: int = 1) -> list[Any]:
    """Seeded user `index`'s anime entries as Kitsu shows them to their owner."""
    user = sandbox.store.user_by_id(int(sandbox.credentials(index).user_id))
    return [
        entry
        for entry in sandbox.store.entries_by_user[user.id]
        if entry.kind == "anime" and (not entry.nsfw or not user.sfw_filter)
    ]


def finished_runs(user: Any) -> list[SyncRun]:
    return list(
        SyncRun.objects.filter(user=user).exclude(outcome=SyncOutcome.RUNNING).order_by("pk")
    )
