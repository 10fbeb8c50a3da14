"""A user's own changes to their list: add an anime, edit an entry, remove it.

Each change is checked the way Kitsu will check it (so that it can be sent there), saved with
`local_updated_at` (the merge's "newer change wins"), and queued for Kitsu in the same
transaction when the direction sends changes there (services/outbox.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kitsu_sync.mapping import RECONSUME_COUNT_MAX, SCORE_MAX, progress_cap
from kitsu_sync.merge import SyncDirection
from kitsu_sync.models import (
    Anime,
    KitsuOutbox,
    KitsuToken,
    LibraryEntry,
    OutboxAction,
    SyncOutcome,
    SyncRun,
    WatchStatus,
)
from kitsu_sync.records import ConflictRecord
from kitsu_sync.services import outbox
from kitsu_sync.services.metadata import stored_anime

EDITABLE = (
    "status",
    "progress",
    "score",
    "rewatching",
    "rewatch_count",
    "notes",
    "private",
    "started_at",
    "finished_at",
)
MAX_NOTES = 10_000


class EntryError(ValueError):
    """The change cannot be made; `message` says why, and `field` which value."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NoSuchEntry(EntryError):
    """The user has no entry for that anime."""


def _whole(value: Any, field: str, *, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntryError(f"{field} is a whole number.", field=field)
    if value < low or (high is not None and value > high):
        limit = f"{low} to {high}" if high is not None else f"{low} or more"
        raise EntryError(f"{field} is {limit}, not {value}.", field=field)
    return value


def _checked(name: str, value: Any, anime: Anime) -> Any:
    """One field's new value, checked as Kitsu will check it."""
    if name == "status":
        if value not in WatchStatus.values:
            raise EntryError(f"status is one of {', '.join(WatchStatus.values)}.", field=name)
        return value
    if name == "progress":
        cap = progress_cap(anime.episode_count, anime.start_date, timezone.now().date())
        return _whole(value, "progress", low=0, high=cap)
    if name == "score":
        return None if value is None else _whole(value, "score", low=0, high=SCORE_MAX) or None
    if name == "rewatch_count":
        return _whole(value, "rewatch_count", low=0, high=RECONSUME_COUNT_MAX)
    if name in ("rewatching", "private"):
        if not isinstance(value, bool):
            raise EntryError(f"{name} is true or false.", field=name)
        return value
    if name == "notes":
        text = "" if value is None else value
        if not isinstance(text, str) or len(text) > MAX_NOTES:
            raise EntryError(f"notes are text of at most {MAX_NOTES} characters.", field=name)
        return text
    return _moment(name, value)


def _moment(name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise EntryError(f"{name} is a date and time with its time zone.", field=name)
    return value


def _save(entry: LibraryEntry) -> bool:
    """Save a changed entry as a Revenge change; whether it was queued for Kitsu."""
    entry.local_updated_at = timezone.now()
    entry.save()
    queued = outbox.sends_to_kitsu(entry.user_id)
    if queued:
        outbox.queue_write(entry)
    return queued


def update_entry(*, user_id: int, anime_kitsu_id: int, changes: Mapping[str, Any]) -> LibraryEntry:
    """Apply `changes` (a subset of EDITABLE) to the user's entry for this anime."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise EntryError(f"These cannot be changed: {', '.join(unknown)}.", field=unknown[0])
    with transaction.atomic():
        entry = (
            LibraryEntry.objects.select_for_update(of=("self",))
            .select_related("anime")
            .filter(user_id=user_id, anime__kitsu_id=anime_kitsu_id)
            .first()
        )
        if entry is None:
            raise NoSuchEntry(f"Your list has no entry for Kitsu anime {anime_kitsu_id}.")
        checked = {name: _checked(name, value, entry.anime) for name, value in changes.items()}
        started = checked.get("started_at", entry.started_at)
        finished = checked.get("finished_at", entry.finished_at)
        # By day: a date chosen on a page is midnight UTC, a start Kitsu recorded has its time.
        if started and finished and finished.date() < started.date():
            raise EntryError("finished_at is before started_at.", field="finished_at")
        changed = {n: v for n, v in checked.items() if getattr(entry, n) != v}
        if changed:
            for name, value in changed.items():
                setattr(entry, name, value)
            if {"status", "progress"} & changed.keys():
                entry.progressed_at = timezone.now()
            _save(entry)
    return entry


def add_entry(*, user_id: int, anime_kitsu_id: int, status: str) -> tuple[LibraryEntry, bool]:
    """Add the anime to the user's list (the entry, and whether it is new)."""
    if status not in WatchStatus.values:
        raise EntryError(f"status is one of {', '.join(WatchStatus.values)}.", field="status")
    anime = stored_anime(anime_kitsu_id)
    with transaction.atomic():
        entry, created = LibraryEntry.objects.get_or_create(
            user_id=user_id, anime=anime, defaults={"status": status}
        )
        if created:
            _save(entry)
    return entry, created


def delete_entry(*, user_id: int, anime_kitsu_id: int) -> bool:
    """Remove the anime from the user's list; it is removed from Kitsu too when the direction
    sends changes there. False when the list had no such entry."""
    with transaction.atomic():
        entry = (
            LibraryEntry.objects.select_for_update()
            .filter(user_id=user_id, anime__kitsu_id=anime_kitsu_id)
            .first()
        )
        if entry is None:
            return False
        if entry.kitsu_entry_id is not None and outbox.sends_to_kitsu(user_id):
            outbox.queue_delete(
                user_id=user_id, anime_id=entry.anime_id, kitsu_entry_id=entry.kitsu_entry_id
            )
        else:
            # Never on Kitsu (or not sent there): a write still waiting has nothing to send.
            KitsuOutbox.objects.filter(
                user_id=user_id, anime_id=entry.anime_id, action=OutboxAction.WRITE
            ).delete()
        entry.delete()
    return True


# --- where an entry stands with Kitsu ---------------------------------------------------------


class KitsuState:
    IN_STEP = "in_step"  # Kitsu has it as Revenge does
    WAITING = "waiting"  # a change waits in the outbox
    SENT = "sent"  # Kitsu took Revenge's last change
    FAILED = "failed"  # Kitsu refused the change (why is given)
    LOCAL = "local"  # import only, or no Kitsu account: Revenge's changes stay here
    CONFLICT = "conflict"  # both sides changed it before the last sync: what won, and why


WAITING = "waiting to be sent to Kitsu"


@dataclass(frozen=True)
class Standing:
    state: str
    detail: str


def standings(entries: list[LibraryEntry]) -> dict[int, Standing]:
    """Where each entry stands with Kitsu, by entry pk (a query for the outbox rows, one for
    the links, one per user for their last sync's conflicts)."""
    if not entries:
        return {}
    user_ids = {entry.user_id for entry in entries}
    rows = {
        (row.user_id, row.anime_id): row
        for row in KitsuOutbox.objects.filter(
            user_id__in=user_ids, anime_id__in=[entry.anime_id for entry in entries]
        )
    }
    if settings.KITSU_SYNC_DIRECTION == SyncDirection.IMPORT_ONLY:
        kept_here = dict.fromkeys(user_ids, "import only")
    else:
        linked = set(
            KitsuToken.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True)
        )
        kept_here = {user: "no Kitsu account linked" for user in user_ids - linked}
    conflicts = _last_conflicts(user_ids)
    return {
        entry.pk: _standing(
            entry,
            rows.get((entry.user_id, entry.anime_id)),
            kept_here.get(entry.user_id),
            conflicts.get((entry.user_id, entry.anime.kitsu_id), []),
        )
        for entry in entries
    }


def _last_conflicts(user_ids: set[int]) -> dict[tuple[int, int], list[ConflictRecord]]:
    """The conflicts each user's last sync settled, by (user, Kitsu anime id)."""
    found: dict[tuple[int, int], list[ConflictRecord]] = {}
    for user_id in user_ids:
        run = (
            SyncRun.objects.filter(user_id=user_id, dry_run=False, finished_at__isnull=False)
            .exclude(outcome=SyncOutcome.SKIPPED)
            .order_by("-started_at")
            .values("conflict_log", "finished_at")
            .first()
        )
        for record in run["conflict_log"] if run else []:
            found.setdefault((user_id, record["anime"]), []).append(record)
    return found


def describe_conflict(records: list[ConflictRecord]) -> str:
    """What each side had and what won, in words."""
    parts = []
    for record in records:
        kept = "Kitsu's" if record["kept"] == "kitsu" else "Revenge's"
        parts.append(
            f"{record['field']}: Revenge had {record['local']!r}, Kitsu {record['remote']!r}; "
            f"{kept} kept ({record['rule']})"
        )
    return "Both sides changed it before the last sync. " + "; ".join(parts)


def _standing(
    entry: LibraryEntry,
    row: KitsuOutbox | None,
    kept_here: str | None,
    conflicts: list[ConflictRecord],
) -> Standing:
    if row is not None and row.failed:
        return Standing(KitsuState.FAILED, f"Kitsu refused the change: {row.last_error}")
    if row is not None:
        retry = f" (last attempt: {row.last_error})" if row.last_error else ""
        return Standing(KitsuState.WAITING, f"{WAITING}{retry}")
    changed_here = entry.local_updated_at is not None and (
        entry.pushed_at is None or entry.pushed_at < entry.local_updated_at
    )
    if kept_here and changed_here:
        return Standing(KitsuState.LOCAL, f"changed in Revenge; {kept_here}: kept here")
    if conflicts and not changed_here:
        return Standing(KitsuState.CONFLICT, describe_conflict(conflicts))
    if entry.pushed_at is not None and not changed_here:
        return Standing(KitsuState.SENT, f"sent to Kitsu at {entry.pushed_at:%Y-%m-%d %H:%M} UTC")
    return Standing(KitsuState.IN_STEP, "as on Kitsu")
