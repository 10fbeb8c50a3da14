"""The three-way merge of one library entry: pure functions, no database, no HTTP.

An entry's values are compared as *snapshots*: the synced fields in a JSON-safe form (times as
Kitsu writes them, UTC with milliseconds), so that a value stored in `synced_values`, a value
read from the database and a value read from Kitsu compare equal when they mean the same.

Rules, per field (the base is the snapshot stored after the last successful sync):

* unchanged on both sides, or changed to the same value: nothing to do;
* changed on one side only: that side's value is taken (if the direction lets it travel);
* changed on both sides (a conflict, recorded):
  - `import_only`: Kitsu's value wins; `export_only`: Revenge's value wins;
  - `two_way`: if a rewatch started on exactly one side, that side wins status, progress and
    the rewatch flag; otherwise progress and the rewatch count never go backwards (the higher
    value is kept), and for every other field the newer change wins (Revenge's
    `local_updated_at` against Kitsu's `updatedAt`; a tie goes to Kitsu).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from kitsu_sync.mapping import format_kitsu_datetime, parse_kitsu_datetime
from kitsu_sync.records import ConflictRecord


class SyncDirection(StrEnum):
    """Which way values may travel (KITSU_SYNC_DIRECTION; SyncRun.direction)."""

    IMPORT_ONLY = "import_only"
    EXPORT_ONLY = "export_only"
    TWO_WAY = "two_way"

    @property
    def label(self) -> str:
        return _DIRECTION_LABELS[self]


_DIRECTION_LABELS = {
    SyncDirection.IMPORT_ONLY: "Import only",
    SyncDirection.EXPORT_ONLY: "Export only",
    SyncDirection.TWO_WAY: "Two-way",
}

SYNCED_FIELDS: tuple[str, ...] = (
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
TIME_FIELDS = frozenset({"started_at", "finished_at"})
# Fields Kitsu's before_save may change on its own (completion, start and finish dates).
SIDE_EFFECT_FIELDS: tuple[str, ...] = ("status", "progress", "started_at", "finished_at")
# A rewatch restarting on one side takes these fields with it.
REWATCH_FIELDS = frozenset({"status", "progress", "rewatching"})
# Counters: a conflict keeps the higher value.
COUNTER_FIELDS = frozenset({"progress", "rewatch_count"})


KITSU = "kitsu"
REVENGE = "revenge"

Snapshot = dict[str, Any]


def _comparable(name: str, value: Any) -> Any:
    if name in TIME_FIELDS:
        if value is None:
            return None
        if isinstance(value, datetime | date):
            return format_kitsu_datetime(value)
        # Already a snapshot string: normalise it the same way.
        return format_kitsu_datetime(parse_kitsu_datetime(value))
    if name == "notes":
        return value or ""
    return value


def snapshot(values: Mapping[str, Any]) -> Snapshot:
    """The synced fields of mapped or stored values, JSON-safe and comparable (a snapshot of a
    snapshot is itself)."""
    return {name: _comparable(name, values.get(name)) for name in SYNCED_FIELDS}


def snapshot_of(entry: Any) -> Snapshot:
    """`snapshot` of an object with the synced fields as attributes (a LibraryEntry)."""
    return snapshot({name: getattr(entry, name) for name in SYNCED_FIELDS})


def model_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Snapshot values as model field values (times back to aware datetimes)."""
    restored = dict(values)
    for name in TIME_FIELDS & restored.keys():
        restored[name] = parse_kitsu_datetime(restored[name])
    return restored


@dataclass(frozen=True)
class Conflict:
    """A field changed on both sides to different values, and how it was settled."""

    field: str
    base: Any
    local: Any
    remote: Any
    kept: str  # KITSU or REVENGE
    rule: str

    def as_record(self, *, anime_kitsu_id: int, title: str = "") -> ConflictRecord:
        return {
            "anime": anime_kitsu_id,
            "title": title,
            "field": self.field,
            "base": self.base,
            "local": self.local,
            "remote": self.remote,
            "kept": self.kept,
            "value": self.local if self.kept == REVENGE else self.remote,
            "rule": self.rule,
        }


@dataclass
class MergeResult:
    """What to do with one entry.

    `merged` is the entry both sides should end up with; `to_local` the Revenge fields to
    change, `to_remote` the fields Kitsu must be told about (empty: no write to Kitsu).
    """

    merged: Snapshot
    to_local: dict[str, Any] = field(default_factory=dict)
    to_remote: dict[str, Any] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def changes_anything(self) -> bool:
        return bool(self.to_local or self.to_remote)


def rewatch_started(side: Snapshot, base: Snapshot | None) -> bool:
    """A rewatch began on this side since the base (the rewatch flag went from off to on)."""
    return bool(side["rewatching"]) and not (base is not None and base["rewatching"])


def _describe_time(moment: datetime | None) -> str:
    return format_kitsu_datetime(moment) if moment is not None else "unknown"


def _settle_two_way(
    name: str,
    *,
    base: Snapshot | None,
    local: Snapshot,
    remote: Snapshot,
    local_updated_at: datetime | None,
    remote_updated_at: datetime | None,
) -> tuple[str, str]:
    """(side kept, rule) for a field changed on both sides in a two-way sync."""
    local_rewatch = rewatch_started(local, base)
    remote_rewatch = rewatch_started(remote, base)
    if name in REWATCH_FIELDS and local_rewatch != remote_rewatch:
        side = REVENGE if local_rewatch else KITSU
        where = "Revenge" if local_rewatch else "Kitsu"
        return side, f"a rewatch started on {where}: its {name} wins"
    if name in COUNTER_FIELDS:
        kept = REVENGE if local[name] > remote[name] else KITSU
        return kept, f"{name} never goes backwards: kept the higher value"
    if local_updated_at is not None and (
        remote_updated_at is None or local_updated_at > remote_updated_at
    ):
        return REVENGE, (
            f"newer change wins: Revenge at {_describe_time(local_updated_at)} after Kitsu at "
            f"{_describe_time(remote_updated_at)}"
        )
    return KITSU, (
        f"newer change wins: Kitsu at {_describe_time(remote_updated_at)}, Revenge at "
        f"{_describe_time(local_updated_at)}"
    )


@dataclass(frozen=True)
class _Sides:
    """Everything the merge of one field needs to know about the entry."""

    base: Snapshot | None
    local: Snapshot
    remote: Snapshot
    direction: str
    local_updated_at: datetime | None
    remote_updated_at: datetime | None


def _kept_side(name: str, sides: _Sides) -> tuple[str, Conflict | None]:
    """Which side's value a field keeps, and the conflict when both sides changed it."""
    base = sides.base
    base_value = None if base is None else base.get(name)
    local_value, remote_value = sides.local[name], sides.remote[name]
    local_changed = base is None or local_value != base_value
    remote_changed = base is None or remote_value != base_value
    if local_value == remote_value or (local_changed and not remote_changed):
        return REVENGE, None
    if remote_changed and not local_changed:
        return KITSU, None
    if sides.direction == SyncDirection.IMPORT_ONLY:
        kept, rule = KITSU, "import only: Kitsu's value wins"
    elif sides.direction == SyncDirection.EXPORT_ONLY:
        kept, rule = REVENGE, "export only: Revenge's value wins"
    else:
        kept, rule = _settle_two_way(
            name,
            base=base,
            local=sides.local,
            remote=sides.remote,
            local_updated_at=sides.local_updated_at,
            remote_updated_at=sides.remote_updated_at,
        )
    return kept, Conflict(name, base_value, local_value, remote_value, kept=kept, rule=rule)


def _one_sided(
    local: Snapshot | None, remote: Snapshot | None, direction: str
) -> MergeResult | None:
    """The merge of an entry that only one side holds (None when both hold it)."""
    if local is None and remote is None:
        raise ValueError("An entry needs at least one side.")
    if local is None:
        assert remote is not None
        if direction == SyncDirection.EXPORT_ONLY:
            return MergeResult(merged=dict(remote))
        return MergeResult(merged=dict(remote), to_local=dict(remote))
    if remote is None:
        if direction == SyncDirection.IMPORT_ONLY:
            return MergeResult(merged=dict(local))
        return MergeResult(merged=dict(local), to_remote=dict(local))
    return None


def merge_entry(
    *,
    base: Snapshot | None,
    local: Snapshot | None,
    remote: Snapshot | None,
    direction: str,
    local_updated_at: datetime | None = None,
    remote_updated_at: datetime | None = None,
) -> MergeResult:
    """Merge one entry's snapshots (either side may be missing: never synced to it yet)."""
    if direction not in _DIRECTION_LABELS:
        raise ValueError(
            f"Unknown sync direction {direction!r}; use one of {', '.join(SyncDirection)}."
        )
    one_sided = _one_sided(local, remote, direction)
    if one_sided is not None:
        return one_sided
    assert local is not None
    assert remote is not None
    sides = _Sides(base, local, remote, direction, local_updated_at, remote_updated_at)
    # The direction decides which way a value may travel: a value it holds back stays local.
    held_back = {
        SyncDirection.IMPORT_ONLY: REVENGE,
        SyncDirection.EXPORT_ONLY: KITSU,
    }.get(SyncDirection(direction))
    result = MergeResult(merged={})
    for name in SYNCED_FIELDS:
        kept, conflict = _kept_side(name, sides)
        if conflict is not None:
            result.conflicts.append(conflict)
        local_value, remote_value = local[name], remote[name]
        if kept == held_back:
            result.merged[name] = local_value
            continue
        value = local_value if kept == REVENGE else remote_value
        result.merged[name] = value
        if value != local_value:
            result.to_local[name] = value
        if value != remote_value:
            result.to_remote[name] = value
    return result


def base_after(
    result: MergeResult, *, base: Snapshot | None, remote: Snapshot | None
) -> Snapshot | None:
    """The base to store once this merge is written locally (before any write to Kitsu).

    A field both sides now agree on gets that value. A field still waiting to reach Kitsu keeps
    Kitsu's current value, so that the next sync sees it as a Revenge change again if the
    write fails. A difference the direction does not let travel keeps the old base, so that it
    stays a one-sided change. None while the entry is not on Kitsu at all.
    """
    if remote is None:
        return None
    stored: Snapshot = {}
    for name in SYNCED_FIELDS:
        if name in result.to_remote or result.merged[name] == remote[name] or base is None:
            stored[name] = remote[name]
        else:
            stored[name] = base.get(name, remote[name])
    return stored


def base_after_write(*, before: Snapshot | None, local: Snapshot, written: Snapshot) -> Snapshot:
    """The base once Kitsu answered a write with `written`: agreed fields take that value, a
    difference kept on purpose (a one-sided change the direction holds back) keeps `before`."""
    return {
        name: written[name]
        if local[name] == written[name] or before is None
        else before.get(name, written[name])
        for name in SYNCED_FIELDS
    }
