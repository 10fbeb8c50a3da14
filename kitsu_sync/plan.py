"""The sync engine's decisions: pure functions from what each side holds to an immutable plan.

One page of a user's Kitsu library goes

    read_page(resources)                -> RemotePage  (mapping: Revenge fields, per-entry errors)
    plan_page(remote, local, direction) -> PagePlan    (merge: rows to write, writes for Kitsu)

and `services.library.sync_page` writes a PagePlan in one short transaction that also moves the
incremental cursor. The other decisions of a sync are planned the same way: `plan_removals`
(a full pass found entries gone from Kitsu), `plan_local_push` (an entry changed in Revenge
only) and `plan_written` (what Kitsu answered to a write). A dry run computes the same plans
and applies none of them; `planned_changes` says what each would do, in words and values.

Nothing here reads the database, the clock or the network: local rows come in as `LocalEntry`
and plain mappings, and the time to stamp comes in as `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from kitsu_sync.kitsu_api import Resource
from kitsu_sync.mapping import (
    MappingError,
    anime_fields,
    included_anime,
    kitsu_entry_attributes,
    library_entry_fields,
)
from kitsu_sync.merge import (
    KITSU,
    REVENGE,
    SIDE_EFFECT_FIELDS,
    SYNCED_FIELDS,
    Conflict,
    Snapshot,
    SyncDirection,
    base_after,
    base_after_write,
    merge_entry,
    model_values,
    snapshot,
)
from kitsu_sync.records import ConflictRecord, ErrorRecord, error_record, json_value

# The LibraryEntry columns a merge or a write to Kitsu may change.
ENTRY_UPDATE_FIELDS: tuple[str, ...] = (
    *SYNCED_FIELDS,
    "kitsu_entry_id",
    "kitsu_updated_at",
    "progressed_at",
    "synced_values",
    "pushed_at",
    "updated_at",
)


# --- counts and planned changes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncCounts:
    """What a sync did to entries (the SyncRun columns of the same names)."""

    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    pushed: int = 0
    conflicts: int = 0
    failed: int = 0

    def __add__(self, other: SyncCounts) -> SyncCounts:
        return SyncCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One change a plan makes, on one side, for a person to read (dry runs list them)."""

    side: str  # REVENGE or KITSU
    action: str  # create, update, delete or unlink
    anime: int  # Kitsu anime id
    title: str
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (from, to)

    def as_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "action": self.action,
            "anime": self.anime,
            "title": self.title,
            "changes": {
                name: {"from": json_value(old), "to": json_value(new)}
                for name, (old, new) in self.changes.items()
            },
        }


# --- what each side holds -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemotePage:
    """One page of a Kitsu library, as Revenge fields."""

    entries: tuple[Mapping[str, Any], ...]  # `library_entry_fields` of each anime entry
    anime: Mapping[int, Mapping[str, Any]]  # `anime_fields` of the included anime, by Kitsu id
    unreadable_anime: Mapping[int, str]  # included anime that could not be read: why
    errors: tuple[ErrorRecord, ...]  # entries that could not be read
    seen_entry_ids: frozenset[int]  # every readable entry id on the page (manga included)
    unreadable_entry: bool  # an entry's id could not be read: a full pass deletes nothing
    newest_updated_at: datetime | None  # the cursor once the page is written
    fetched: int  # anime entries, readable or not

    @property
    def anime_kitsu_ids(self) -> set[int]:
        """The anime the page's entries are for, and those it included."""
        return {values["anime_kitsu_id"] for values in self.entries} | self.anime.keys()


@dataclass(frozen=True, slots=True)
class LocalEntry:
    """A stored LibraryEntry: its columns (`row`, by attribute name) and its anime."""

    row: Mapping[str, Any]
    anime_kitsu_id: int
    title: str
    episode_count: int | None

    @property
    def pk(self) -> int:
        return self.row["id"]

    @property
    def values(self) -> Snapshot:
        return snapshot(self.row)

    @property
    def base(self) -> Snapshot | None:
        stored = self.row["synced_values"]
        return None if stored is None else snapshot(stored)


@dataclass(frozen=True, slots=True)
class LocalState:
    """What Revenge holds for one page: the stored anime (by Kitsu id, `id` and the fields
    `anime_fields` returns) and the user's entries for them (by anime Kitsu id)."""

    anime: Mapping[int, Mapping[str, Any]]
    entries: Mapping[int, LocalEntry]
    # Anime whose entry was removed in Revenge, the removal still on its way to Kitsu.
    removing: frozenset[int] = frozenset()


# --- the plans ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryCreate:
    anime_kitsu_id: int
    title: str
    values: Mapping[str, Any]  # LibraryEntry fields, without user and anime


@dataclass(frozen=True, slots=True)
class EntryUpdate:
    """A stored entry rewritten: `row` is the whole row after the change."""

    row: Mapping[str, Any]
    anime_kitsu_id: int
    title: str
    # The synced fields that change, (before, after); empty when only bookkeeping changes.
    changes: Mapping[str, tuple[Any, Any]]

    @property
    def pk(self) -> int:
        return self.row["id"]


@dataclass(frozen=True, slots=True)
class Push:
    """A write Kitsu must receive: the merged entry's `to_remote` fields."""

    entry_pk: int
    kitsu_entry_id: int | None  # None: the entry is created on Kitsu
    anime_kitsu_id: int
    title: str
    episode_count: int | None
    merged: Snapshot
    to_remote: Mapping[str, Any]
    base: Snapshot | None  # the base stored before the write (None: new to Kitsu)
    local_updated_at: datetime | None  # a later change in Revenge is not overwritten
    remote: Snapshot | None  # Kitsu's values before the write, as far as known

    def attributes(self) -> dict[str, Any]:
        """The write Kitsu will accept (raises MappingError otherwise)."""
        values = model_values(self.merged)
        optional = {
            name: values[name] if name in self.to_remote else None
            for name in ("notes", "private", "started_at", "finished_at")
        }
        return kitsu_entry_attributes(
            status=values["status"],
            progress=values["progress"],
            score=values["score"],
            rewatching=values["rewatching"],
            rewatch_count=values["rewatch_count"],
            episode_count=self.episode_count,
            **optional,
        )

    def planned_change(self) -> PlannedChange:
        return PlannedChange(
            side=KITSU,
            action="update" if self.kitsu_entry_id is not None else "create",
            anime=self.anime_kitsu_id,
            title=self.title,
            changes={
                name: (None if self.remote is None else self.remote[name], value)
                for name, value in self.to_remote.items()
            },
        )


@dataclass(frozen=True, slots=True)
class PagePlan:
    """Everything one page of Kitsu's library changes, on both sides."""

    anime: tuple[Mapping[str, Any], ...]  # anime to insert or update (`anime_fields`)
    creates: tuple[EntryCreate, ...]
    updates: tuple[EntryUpdate, ...]
    pushes: tuple[Push, ...]  # sent once the whole library is read
    conflicts: tuple[ConflictRecord, ...]
    errors: tuple[ErrorRecord, ...]
    counts: SyncCounts
    seen_entry_ids: frozenset[int]
    met_entry_pks: frozenset[int]  # stored entries this page holds
    unreadable_entry: bool
    newest_updated_at: datetime | None

    def planned_changes(self) -> list[PlannedChange]:
        changes = [
            PlannedChange(
                REVENGE,
                "create",
                create.anime_kitsu_id,
                create.title,
                {name: (None, value) for name, value in snapshot(create.values).items()},
            )
            for create in self.creates
        ]
        changes += [
            PlannedChange(REVENGE, "update", update.anime_kitsu_id, update.title, update.changes)
            for update in self.updates
            if update.changes
        ]
        return changes + [push.planned_change() for push in self.pushes]


@dataclass(frozen=True, slots=True)
class RemovalPlan:
    """A complete full pass did not meet these entries on Kitsu."""

    deletes: tuple[LocalEntry, ...]
    unlinks: tuple[EntryUpdate, ...]  # kept in Revenge, to be added to Kitsu again
    conflicts: tuple[ConflictRecord, ...]

    @property
    def counts(self) -> SyncCounts:
        return SyncCounts(deleted=len(self.deletes), conflicts=len(self.conflicts))

    def planned_changes(self) -> list[PlannedChange]:
        return [
            PlannedChange(REVENGE, "delete", entry.anime_kitsu_id, entry.title)
            for entry in self.deletes
        ] + [
            PlannedChange(REVENGE, "unlink", update.anime_kitsu_id, update.title)
            for update in self.unlinks
        ]


# --- one page -----------------------------------------------------------------------------------


def _entry_id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else None


def read_page(resources: Sequence[Resource], *, now: datetime) -> RemotePage:
    """A page of `libraryEntries` (with their anime included) as Revenge fields.

    Entries for manga or drama are left out; an entry or anime that cannot be read becomes an
    error record, and the rest of the page goes on.
    """
    entries: list[Mapping[str, Any]] = []
    anime: dict[int, Mapping[str, Any]] = {}
    unreadable_anime: dict[int, str] = {}
    errors: list[ErrorRecord] = []
    seen: set[int] = set()
    unreadable_entry = False
    newest: datetime | None = None
    fetched = 0
    for resource in resources:
        entry_id = _entry_id(resource.id)
        if entry_id is None:
            unreadable_entry = True
        else:
            seen.add(entry_id)
        try:
            values = library_entry_fields(resource)
        except MappingError as exc:
            fetched += 1
            errors.append(
                error_record(
                    f"Kitsu library entry {resource.id} could not be read and was skipped: {exc}",
                    entry=resource.id,
                    at=now,
                )
            )
            continue
        updated_at = values["kitsu_updated_at"]
        if newest is None or updated_at > newest:
            newest = updated_at
        anime_kitsu_id = values["anime_kitsu_id"]
        if anime_kitsu_id is None:
            continue  # a manga or drama entry: not part of an anime library
        fetched += 1
        included = included_anime(resource)
        if included is not None and anime_kitsu_id not in anime:
            try:
                anime[anime_kitsu_id] = anime_fields(included)
            except MappingError as exc:
                unreadable_anime[anime_kitsu_id] = str(exc)
        entries.append(values)
    return RemotePage(
        entries=tuple(entries),
        anime=anime,
        unreadable_anime=unreadable_anime,
        errors=tuple(errors),
        seen_entry_ids=frozenset(seen),
        unreadable_entry=unreadable_entry,
        newest_updated_at=newest,
        fetched=fetched,
    )


def _anime_changes(remote: RemotePage, local: LocalState) -> tuple[Mapping[str, Any], ...]:
    """The page's anime that are new here or differ from what is stored."""
    changed = []
    for kitsu_id, values in remote.anime.items():
        stored = local.anime.get(kitsu_id)
        if stored is None or any(stored[name] != value for name, value in values.items()):
            changed.append(values)
    return tuple(changed)


def _missing_anime_error(
    remote: RemotePage, values: Mapping[str, Any], now: datetime
) -> ErrorRecord:
    anime_kitsu_id = values["anime_kitsu_id"]
    problem = remote.unreadable_anime.get(anime_kitsu_id)
    reason = (
        f"Kitsu anime {anime_kitsu_id} could not be read ({problem})"
        if problem
        else f"Kitsu sent no details of anime {anime_kitsu_id}"
    )
    return error_record(
        f"{reason}; its library entry was skipped.",
        entry=values["kitsu_entry_id"],
        anime=anime_kitsu_id,
        at=now,
    )


def _new_entry(values: Mapping[str, Any]) -> dict[str, Any]:
    remote = snapshot(values)
    return {
        **model_values(remote),
        "progressed_at": values["progressed_at"],
        "kitsu_entry_id": values["kitsu_entry_id"],
        "kitsu_updated_at": values["kitsu_updated_at"],
        "synced_values": remote,
    }


@dataclass
class _PageDraft:
    """A plan while it is being built (plan_page's own working state)."""

    creates: list[EntryCreate] = field(default_factory=list)
    updates: list[EntryUpdate] = field(default_factory=list)
    pushes: list[Push] = field(default_factory=list)
    conflicts: list[ConflictRecord] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    met: set[int] = field(default_factory=set)
    updated: int = 0
    unchanged: int = 0


def plan_page(remote: RemotePage, local: LocalState, *, direction: str, now: datetime) -> PagePlan:
    """Merge each entry of the page with its stored counterpart (three-way, `merge_entry`)."""
    draft = _PageDraft(errors=list(remote.errors))
    known_anime = remote.anime.keys() | local.anime.keys()
    for values in remote.entries:
        anime_kitsu_id = values["anime_kitsu_id"]
        if anime_kitsu_id not in known_anime:
            draft.errors.append(_missing_anime_error(remote, values, now))
            continue
        anime = remote.anime.get(anime_kitsu_id) or local.anime[anime_kitsu_id]
        stored = local.entries.get(anime_kitsu_id)
        if stored is not None:
            _merge_stored(draft, values, stored, anime, direction=direction, now=now)
        elif direction == SyncDirection.EXPORT_ONLY or anime_kitsu_id in local.removing:
            # Export only never brings Kitsu's entries over; a removal on its way is not undone.
            draft.unchanged += 1
        else:
            draft.creates.append(EntryCreate(anime_kitsu_id, anime["title"], _new_entry(values)))
    return PagePlan(
        anime=_anime_changes(remote, local),
        creates=tuple(draft.creates),
        updates=tuple(draft.updates),
        pushes=tuple(draft.pushes),
        conflicts=tuple(draft.conflicts),
        errors=tuple(draft.errors),
        counts=SyncCounts(
            fetched=remote.fetched,
            created=len(draft.creates),
            updated=draft.updated,
            unchanged=draft.unchanged,
            conflicts=len(draft.conflicts),
            failed=len(draft.errors),
        ),
        seen_entry_ids=remote.seen_entry_ids,
        met_entry_pks=frozenset(draft.met),
        unreadable_entry=remote.unreadable_entry,
        newest_updated_at=remote.newest_updated_at,
    )


def _merge_stored(
    draft: _PageDraft,
    values: Mapping[str, Any],
    stored: LocalEntry,
    anime: Mapping[str, Any],
    *,
    direction: str,
    now: datetime,
) -> None:
    remote = snapshot(values)
    entry_id = values["kitsu_entry_id"]
    title = anime["title"]
    draft.met.add(stored.pk)
    # A different Kitsu entry for the same anime (deleted and added again there): no base.
    base = stored.base if stored.row["kitsu_entry_id"] == entry_id else None
    before = stored.values
    merge = merge_entry(
        base=base,
        local=before,
        remote=remote,
        direction=direction,
        local_updated_at=stored.row["local_updated_at"],
        remote_updated_at=values["kitsu_updated_at"],
    )
    draft.conflicts.extend(
        conflict.as_record(anime_kitsu_id=stored.anime_kitsu_id, title=title)
        for conflict in merge.conflicts
    )
    new_base = base_after(merge, base=base, remote=remote)
    row = dict(stored.row)
    row.update(model_values(merge.to_local))
    if {"status", "progress"} & merge.to_local.keys():
        row["progressed_at"] = values["progressed_at"]
    row.update(
        kitsu_entry_id=entry_id,
        kitsu_updated_at=values["kitsu_updated_at"],
        synced_values=new_base,
    )
    if merge.to_local:
        draft.updated += 1
    else:
        draft.unchanged += 1
    if row != stored.row:
        row["updated_at"] = now
        changes = {name: (before[name], value) for name, value in merge.to_local.items()}
        draft.updates.append(EntryUpdate(row, stored.anime_kitsu_id, title, changes))
    if merge.to_remote:
        draft.pushes.append(
            Push(
                entry_pk=stored.pk,
                kitsu_entry_id=entry_id,
                anime_kitsu_id=stored.anime_kitsu_id,
                title=title,
                episode_count=anime["episode_count"],
                merged=merge.merged,
                to_remote=merge.to_remote,
                base=new_base,
                local_updated_at=stored.row["local_updated_at"],
                remote=remote,
            )
        )


# --- after the listing ----------------------------------------------------------------------


def plan_removals(vanished: Iterable[LocalEntry], *, direction: str, now: datetime) -> RemovalPlan:
    """Stored entries whose Kitsu entry a complete full pass did not meet.

    Import-only and two-way syncs delete them, except that two-way keeps (and will add to Kitsu
    again) an entry changed in Revenge since the last sync; export-only keeps them all and adds
    them to Kitsu again.
    """
    deletes: list[LocalEntry] = []
    unlinks: list[EntryUpdate] = []
    conflicts: list[ConflictRecord] = []
    for entry in vanished:
        locally_changed = entry.base is None or entry.values != entry.base
        keep = direction == SyncDirection.EXPORT_ONLY or (
            direction == SyncDirection.TWO_WAY and locally_changed
        )
        if not keep:
            deletes.append(entry)
            continue
        if direction == SyncDirection.TWO_WAY:
            conflict = Conflict(
                "entry",
                base="on Kitsu",
                local="changed in Revenge",
                remote="deleted on Kitsu",
                kept=REVENGE,
                rule="changed in Revenge after the last sync: kept, and added to Kitsu again",
            )
            conflicts.append(
                conflict.as_record(anime_kitsu_id=entry.anime_kitsu_id, title=entry.title)
            )
        row = {
            **entry.row,
            "kitsu_entry_id": None,
            "kitsu_updated_at": None,
            "synced_values": None,
            "updated_at": now,
        }
        unlinks.append(EntryUpdate(row, entry.anime_kitsu_id, entry.title, {}))
    return RemovalPlan(tuple(deletes), tuple(unlinks), tuple(conflicts))


def plan_local_push(entry: LocalEntry, *, direction: str) -> Push | None:
    """The write to Kitsu for an entry changed in Revenge that this sync did not meet on Kitsu
    (None: nothing to send).

    Kitsu's side is taken as unchanged since the last sync (an incremental run fetched every
    entry changed there), so the merge sends exactly the Revenge changes.
    """
    linked = entry.row["kitsu_entry_id"] is not None and entry.base is not None
    base = entry.base if linked else None
    merge = merge_entry(
        base=base,
        local=entry.values,
        remote=base,
        direction=direction,
        local_updated_at=entry.row["local_updated_at"],
    )
    if not merge.to_remote:
        return None
    return Push(
        entry_pk=entry.pk,
        kitsu_entry_id=entry.row["kitsu_entry_id"],
        anime_kitsu_id=entry.anime_kitsu_id,
        title=entry.title,
        episode_count=entry.episode_count,
        merged=merge.merged,
        to_remote=merge.to_remote,
        base=base,
        local_updated_at=entry.row["local_updated_at"],
        remote=base,
    )


def _adopted_fields(push: Push, direction: str) -> set[str]:
    """Fields whose value Kitsu's answer decides locally after a write."""
    if direction == SyncDirection.TWO_WAY:
        return set(SYNCED_FIELDS)
    adopted = set(push.to_remote)
    if {"status", "progress"} & adopted:
        adopted.update(SIDE_EFFECT_FIELDS)  # Kitsu's before_save may have changed these
    return adopted


def plan_written(
    push: Push,
    answer: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    direction: str,
    now: datetime,
) -> EntryUpdate:
    """The stored entry (`current`, its row now) once Kitsu answered a write with `answer`
    (`library_entry_fields` of the entry it returned)."""
    written = snapshot(answer)
    row = dict(current)
    if current["local_updated_at"] != push.local_updated_at:
        # Changed again in Revenge while we wrote: keep that change for the next sync.
        row["synced_values"] = written
    else:
        adopted = _adopted_fields(push, direction)
        local_after = {
            name: written[name] if name in adopted else push.merged[name] for name in SYNCED_FIELDS
        }
        row.update(model_values(local_after))
        row["progressed_at"] = answer["progressed_at"]
        row["synced_values"] = base_after_write(
            before=push.base, local=snapshot(row), written=written
        )
    row.update(
        kitsu_entry_id=answer["kitsu_entry_id"],
        kitsu_updated_at=answer["kitsu_updated_at"],
        pushed_at=now,
        updated_at=now,
    )
    return EntryUpdate(row, push.anime_kitsu_id, push.title, {})
