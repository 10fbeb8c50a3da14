"""One sync's working state: whose library, which way, Kitsu access, and what happened.

The importer, the exporter and the orchestration in `sync` share it; it holds no database
rows open and does no writes of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.utils import timezone

from kitsu_sync.kitsu_api import (
    KitsuClient,
    KitsuConnectionError,
    KitsuError,
    KitsuNotFound,
    KitsuRateLimited,
    KitsuResponseError,
    KitsuServerError,
    KitsuUnauthorized,
    KitsuValidationError,
)
from kitsu_sync.services.merge import Conflict

T = TypeVar("T")

# Errors kept per run and per state row; the count of the rest is kept in one closing line.
MAX_RECORDED_ERRORS = 100


def describe_kitsu_error(error: KitsuError) -> str:
    """A sentence a person can act on; Kitsu's own detail is kept, tokens never appear."""
    if isinstance(error, KitsuValidationError):
        return f"Kitsu refused the change: {error.message}"
    if isinstance(error, KitsuNotFound):
        return (
            "Kitsu no longer has this library entry (deleted there?); a full sync removes it here."
        )
    if isinstance(error, KitsuUnauthorized):
        return (
            "Kitsu refused the access token even after refreshing it; "
            "link your Kitsu account again."
        )
    if isinstance(error, KitsuRateLimited):
        return "Kitsu is rate limiting requests; the sync will be tried again later."
    if isinstance(error, KitsuConnectionError):
        return f"{error.message} The sync will be tried again later."
    if isinstance(error, KitsuServerError | KitsuResponseError):
        return f"{error.message} The sync will be tried again later."
    return error.message


@dataclass
class SyncCounts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    pushed: int = 0
    conflicts: int = 0
    failed: int = 0


@dataclass
class SyncSession:
    user_id: int
    kitsu_user_id: str
    direction: str
    dry_run: bool
    client: KitsuClient
    token: str = field(repr=False)
    # Called with the token Kitsu refused; returns the next one (tokens.refresh_access_token).
    refresh_access_token: Callable[[str], str] = field(repr=False)
    counts: SyncCounts = field(default_factory=SyncCounts)
    errors: list[dict[str, Any]] = field(default_factory=list)
    conflict_log: list[dict[str, Any]] = field(default_factory=list)
    planned_changes: list[dict[str, Any]] = field(default_factory=list)
    errors_dropped: int = 0

    # --- Kitsu access -----------------------------------------------------------------------

    def call(self, request: Callable[[str], T]) -> T:
        """Run one Kitsu request with the access token; on a 401 refresh it once and retry
        once (Kitsu answers 401 to an expired or revoked token)."""
        try:
            return request(self.token)
        except KitsuUnauthorized:
            self.refresh()
            return request(self.token)

    def refresh(self) -> None:
        self.token = self.refresh_access_token(self.token)

    # --- what happened ----------------------------------------------------------------------

    def record_error(
        self,
        reason: str,
        *,
        entry: int | str | None = None,
        anime: int | None = None,
        title: str = "",
        retryable: bool = False,
    ) -> None:
        if len(self.errors) >= MAX_RECORDED_ERRORS:
            self.errors_dropped += 1
            return
        # Belt and braces: no message may carry the token, whatever produced it.
        if self.token:
            reason = reason.replace(self.token, "<token>")
        self.errors.append(
            {
                "at": timezone.now().isoformat(),
                "entry": None if entry is None else str(entry),
                "anime": anime,
                "title": title,
                "reason": reason,
                "retryable": retryable,
            }
        )

    def record_entry_failure(
        self,
        reason: str,
        *,
        entry: int | str | None = None,
        anime: int | None = None,
        title: str = "",
    ) -> None:
        self.counts.failed += 1
        self.record_error(reason, entry=entry, anime=anime, title=title)

    def record_conflicts(
        self, conflicts: list[Conflict], *, anime_kitsu_id: int, title: str
    ) -> None:
        self.counts.conflicts += len(conflicts)
        self.conflict_log.extend(
            conflict.as_log(anime_kitsu_id=anime_kitsu_id, title=title) for conflict in conflicts
        )

    def plan(
        self,
        *,
        side: str,
        action: str,
        anime_kitsu_id: int,
        title: str,
        changes: dict[str, tuple[Any, Any]] | None = None,
    ) -> None:
        """Note a change for a dry run (`side` is "revenge" or "kitsu")."""
        if not self.dry_run:
            return
        self.planned_changes.append(
            {
                "side": side,
                "action": action,
                "anime": anime_kitsu_id,
                "title": title,
                "changes": {
                    name: {"from": _json_value(old), "to": _json_value(new)}
                    for name, (old, new) in (changes or {}).items()
                },
            }
        )

    def recorded_errors(self) -> list[dict[str, Any]]:
        if not self.errors_dropped:
            return list(self.errors)
        return [
            *self.errors,
            {
                "at": timezone.now().isoformat(),
                "entry": None,
                "anime": None,
                "title": "",
                "reason": f"... and {self.errors_dropped} more errors like these.",
                "retryable": False,
            },
        ]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
