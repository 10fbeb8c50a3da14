"""A backup of a user's Revenge library: one portable record per entry (`kitsu_export`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kitsu_sync.mapping import EXTERNAL_ID_FIELDS
from kitsu_sync.merge import SYNCED_FIELDS
from kitsu_sync.models import LibraryEntry

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
