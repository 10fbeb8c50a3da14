"""The JSON records a sync keeps (errors, conflicts), each shape defined once, and the one
conversion of Python values to JSON. Pure: no Django, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypedDict


class ErrorRecord(TypedDict):
    """One failure, as `KitsuSyncState.errors` and `SyncRun.errors` keep it."""

    at: str  # ISO 8601, when it happened
    entry: str | None  # the Kitsu library entry id it is about, if any
    anime: int | None  # the Kitsu anime id it is about, if any
    title: str  # that anime's title ("" when not about one)
    reason: str  # what happened and what to do, for a person
    retryable: bool  # whether a later attempt may succeed on its own


class ConflictRecord(TypedDict):
    """A field changed on both sides since the last sync, and how the merge settled it
    (`SyncRun.conflict_log`)."""

    anime: int  # Kitsu anime id
    title: str
    field: str  # the synced field, or "entry" for the entry as a whole
    base: Any  # its value after the last sync
    local: Any  # Revenge's value
    remote: Any  # Kitsu's value
    kept: str  # "revenge" or "kitsu"
    value: Any  # the value kept
    rule: str  # the rule that decided, in words


def error_record(
    reason: str,
    *,
    entry: int | str | None = None,
    anime: int | None = None,
    title: str = "",
    retryable: bool = False,
    at: datetime | None = None,
) -> ErrorRecord:
    return {
        "at": (at or datetime.now(UTC)).isoformat(),
        "entry": None if entry is None else str(entry),
        "anime": anime,
        "title": title,
        "reason": reason,
        "retryable": retryable,
    }


def json_value(value: Any) -> Any:
    """A value as JSON holds it: dates and times in ISO 8601 (with their offset), decimals as
    numbers, anything else as it is. Also the `default` of `json.dumps`."""
    if isinstance(value, date):  # datetimes included
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
