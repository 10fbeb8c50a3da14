"""Export: Revenge's library changes sent to Kitsu, and Revenge's library as a backup.

Writes go through `mapping.kitsu_entry_attributes`, so Kitsu's validation accepts them
(progress capped at the episode count, ratingTwenty 2..20 or null, rewatches as
`reconsuming`). Each HTTP write happens outside any transaction; the answers of a batch are
then stored in one short transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from kitsu_sync.kitsu_api import KitsuError, KitsuUnauthorized, Resource
from kitsu_sync.mapping import (
    EXTERNAL_ID_FIELDS,
    MappingError,
    kitsu_entry_attributes,
    library_entry_fields,
)
from kitsu_sync.models import Anime, LibraryEntry
from kitsu_sync.services.merge import (
    SIDE_EFFECT_FIELDS,
    SYNCED_FIELDS,
    TWO_WAY,
    Snapshot,
    base_after_write,
    model_values,
    snapshot,
    snapshot_of,
)
from kitsu_sync.services.session import SyncSession, describe_kitsu_error

ENTRY_UPDATE_FIELDS: tuple[str, ...] = (
    *SYNCED_FIELDS,
    "kitsu_entry_id",
    "kitsu_updated_at",
    "progressed_at",
    "synced_values",
    "updated_at",
)
# Kitsu's answer to a write links the entry to its anime only when asked to.
WRITE_INCLUDE = ("anime",)
# Answers stored per transaction; the sync's claim is renewed between batches.
PUSH_BATCH_SIZE = 50


@dataclass
class PendingPush:
    """A merged entry whose `to_remote` fields Kitsu must be told about."""

    entry: LibraryEntry
    anime: Anime
    merged: Snapshot
    to_remote: dict[str, Any]
    # The base stored before this write (None: the entry is new to Kitsu).
    base: Snapshot | None
    # The entry's local_updated_at when merged: a later change is not overwritten.
    local_updated_at: datetime | None


def kitsu_attributes(push: PendingPush) -> dict[str, Any]:
    """The write Kitsu will accept for this entry (raises MappingError otherwise)."""
    values = model_values(push.merged)
    optional = {
        name: values[name] if name in push.to_remote else None
        for name in ("notes", "private", "started_at", "finished_at")
    }
    return kitsu_entry_attributes(
        status=values["status"],
        progress=values["progress"],
        score=values["score"],
        rewatching=values["rewatching"],
        rewatch_count=values["rewatch_count"],
        episode_count=push.anime.episode_count,
        **optional,
    )


def _send(session: SyncSession, push: PendingPush, attributes: dict[str, Any]) -> Resource:
    client = session.client
    entry_id = push.entry.kitsu_entry_id
    if entry_id is None:
        return session.call(
            lambda token: client.create_library_entry(
                token=token,
                user_id=session.kitsu_user_id,
                anime_id=push.anime.kitsu_id,
                attributes=attributes,
                include=WRITE_INCLUDE,
            )
        )
    return session.call(
        lambda token: client.update_library_entry(
            token=token, entry_id=entry_id, attributes=attributes, include=WRITE_INCLUDE
        )
    )


def _about(push: PendingPush) -> dict[str, Any]:
    """Which entry a recorded failure is about."""
    return {
        "entry": push.entry.kitsu_entry_id,
        "anime": push.anime.kitsu_id,
        "title": push.anime.title,
    }


def push_changes(
    session: SyncSession,
    pushes: list[PendingPush],
    *,
    after_batch: Callable[[], None] | None = None,
) -> None:
    """Send each pending change to Kitsu; a refused entry is recorded and skipped.

    An error that a later attempt may fix (Kitsu down, rate limited) stops the whole export
    and propagates: the entries stay changed locally, so the next sync sends them.
    """
    if session.dry_run:
        return
    for start in range(0, len(pushes), PUSH_BATCH_SIZE):
        written: list[tuple[PendingPush, dict[str, Any]]] = []
        try:
            for push in pushes[start : start + PUSH_BATCH_SIZE]:
                title = push.anime.title
                try:
                    attributes = kitsu_attributes(push)
                except MappingError as exc:
                    session.record_entry_failure(
                        f"{title or 'An entry'} could not be sent to Kitsu: {exc}", **_about(push)
                    )
                    continue
                try:
                    resource = _send(session, push, attributes)
                except KitsuUnauthorized:
                    raise
                except KitsuError as exc:
                    if exc.retryable:
                        raise
                    session.record_entry_failure(
                        f"{title or 'An entry'}: {describe_kitsu_error(exc)}", **_about(push)
                    )
                    continue
                session.counts.pushed += 1
                try:
                    written.append((push, library_entry_fields(resource)))
                except MappingError as exc:
                    session.record_error(
                        f"Kitsu took the change to {title or 'an entry'} but its answer could "
                        f"not be read ({exc}); the next sync compares both sides again.",
                        **_about(push),
                    )
        finally:
            # What Kitsu already took is stored even when a later write failed.
            _store_written(session, written)
        if after_batch is not None:
            after_batch()


def _adopted_fields(session: SyncSession, push: PendingPush) -> set[str]:
    """Fields whose value Kitsu's answer decides locally after a write."""
    if session.direction == TWO_WAY:
        return set(SYNCED_FIELDS)
    adopted = set(push.to_remote)
    if {"status", "progress"} & adopted:
        adopted.update(SIDE_EFFECT_FIELDS)  # Kitsu's before_save may have changed these
    return adopted


def _store_written(session: SyncSession, written: list[tuple[PendingPush, dict[str, Any]]]) -> None:
    if not written:
        return
    now = timezone.now()
    with transaction.atomic():
        current = {
            entry.pk: entry
            for entry in LibraryEntry.objects.select_for_update().filter(
                pk__in=[push.entry.pk for push, _ in written]
            )
        }
        updates = []
        for push, values in written:
            entry = current.get(push.entry.pk)
            if entry is None:
                continue  # removed from Revenge meanwhile
            answer = snapshot(values)
            if entry.local_updated_at != push.local_updated_at:
                # Changed again in Revenge while we wrote: keep that change for the next sync.
                entry.synced_values = answer
            else:
                adopted = _adopted_fields(session, push)
                local_after = {
                    name: answer[name] if name in adopted else push.merged[name]
                    for name in SYNCED_FIELDS
                }
                for name, value in model_values(local_after).items():
                    setattr(entry, name, value)
                entry.progressed_at = values["progressed_at"]
                entry.synced_values = base_after_write(
                    before=push.base, local=snapshot_of(entry), written=answer
                )
            entry.kitsu_entry_id = values["kitsu_entry_id"]
            entry.kitsu_updated_at = values["kitsu_updated_at"]
            entry.updated_at = now
            updates.append(entry)
        LibraryEntry.objects.bulk_update(updates, ENTRY_UPDATE_FIELDS)


BACKUP_FIELDS: tuple[str, ...] = (
    "anime_kitsu_id",
    "title",
    *EXTERNAL_ID_FIELDS,
    *SYNCED_FIELDS,
    "kitsu_entry_id",
)


def library_backup(*, user_id: int) -> Iterator[dict[str, Any]]:
    """Revenge's library of one user as portable records: one per entry, with the anime's
    Kitsu id, title and external ids (what `kitsu_export` writes)."""
    entries = (
        LibraryEntry.objects.filter(user_id=user_id)
        .select_related("anime")
        .order_by("anime__title", "pk")
    )
    for entry in entries.iterator(chunk_size=500):
        anime = entry.anime
        yield {
            "anime_kitsu_id": anime.kitsu_id,
            "title": anime.title,
            **{name: getattr(anime, name) for name in EXTERNAL_ID_FIELDS},
            "status": entry.status,
            "progress": entry.progress,
            "score": entry.score,
            "rewatching": entry.rewatching,
            "rewatch_count": entry.rewatch_count,
            "notes": entry.notes,
            "private": entry.private,
            "started_at": entry.started_at,
            "finished_at": entry.finished_at,
            "kitsu_entry_id": entry.kitsu_entry_id,
        }
