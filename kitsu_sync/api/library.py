"""The user's list: read it, add to it, edit and remove entries; and find anime on Kitsu."""

from __future__ import annotations

import math
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Query, Router, Status

from kitsu_sync.api.auth import key_of
from kitsu_sync.api.problems import Problem
from kitsu_sync.api.schemas import (
    AnimeOut,
    EntryCreate,
    EntryOut,
    EntryPatch,
    LibraryPage,
    with_problems,
)
from kitsu_sync.kitsu_api import KitsuError, KitsuNotFound, KitsuUsageError
from kitsu_sync.models import LibraryEntry, WatchStatus
from kitsu_sync.services import entries, metadata

router = Router(tags=["library"])
PAGE_SIZE_MAX = 100


def entry_out(entry: LibraryEntry, standing: entries.Standing) -> dict[str, Any]:
    anime = entry.anime
    return {
        "kitsu_anime_id": anime.kitsu_id,
        "title": anime.title,
        "episode_count": anime.episode_count,
        **{name: getattr(entry, name) for name in entries.EDITABLE},
        "updated_at": entry.updated_at,
        "kitsu": {"state": standing.state, "detail": standing.detail},
    }


def one_out(entry: LibraryEntry) -> dict[str, Any]:
    return entry_out(entry, entries.standings([entry])[entry.pk])


def _entry(request: HttpRequest, kitsu_anime_id: int) -> LibraryEntry:
    entry = (
        LibraryEntry.objects.select_related("anime")
        .filter(user_id=key_of(request).user_id, anime__kitsu_id=kitsu_anime_id)
        .first()
    )
    if entry is None:
        raise Http404(f"Your list has no entry for Kitsu anime {kitsu_anime_id}.")
    return entry


def _entry_problem(exc: entries.EntryError) -> Problem:
    if isinstance(exc, entries.NoSuchEntry):
        return Problem(404, "Not found", exc.message)
    return Problem(422, "The change is not valid", exc.message, field=exc.field)


@router.get(
    "/library",
    response=with_problems({200: LibraryPage}, 422),
    summary="Your list, a page at a time",
)
def list_library(
    request: HttpRequest,
    status: WatchStatus | None = None,
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=PAGE_SIZE_MAX),
) -> dict[str, Any]:
    rows = LibraryEntry.objects.filter(user_id=key_of(request).user_id)
    if status is not None:
        rows = rows.filter(status=status)
    count = rows.count()
    chosen = list(
        rows.select_related("anime").order_by("anime__title", "pk")[
            (page - 1) * page_size : page * page_size
        ]
    )
    states = entries.standings(chosen)
    return {
        "count": count,
        "page": page,
        "pages": max(math.ceil(count / page_size), 1),
        "results": [entry_out(entry, states[entry.pk]) for entry in chosen],
    }


@router.post(
    "/library",
    response=with_problems({201: EntryOut, 200: EntryOut}, 404, 422, 502),
    summary="Add an anime",
)
def add_to_library(request: HttpRequest, body: EntryCreate) -> Any:
    try:
        _, created = entries.add_entry(
            user_id=key_of(request).user_id,
            anime_kitsu_id=body.kitsu_anime_id,
            status=body.status,
        )
    except KitsuNotFound as exc:
        raise Problem(
            404, "No such anime on Kitsu", f"Kitsu has no anime {body.kitsu_anime_id}."
        ) from exc
    except KitsuError as exc:
        raise Problem(502, "Kitsu could not be asked", exc.message) from exc
    entry = _entry(request, body.kitsu_anime_id)
    return Status(201 if created else 200, one_out(entry))


@router.get(
    "/library/{kitsu_anime_id}",
    response=with_problems({200: EntryOut}, 404),
    summary="One entry of your list",
)
def get_entry(request: HttpRequest, kitsu_anime_id: int) -> dict[str, Any]:
    return one_out(_entry(request, kitsu_anime_id))


@router.patch(
    "/library/{kitsu_anime_id}",
    response=with_problems({200: EntryOut}, 404, 422),
    summary="Change an entry",
)
def patch_entry(request: HttpRequest, kitsu_anime_id: int, body: EntryPatch) -> dict[str, Any]:
    changes = body.dict(exclude_unset=True)
    try:
        entries.update_entry(
            user_id=key_of(request).user_id, anime_kitsu_id=kitsu_anime_id, changes=changes
        )
    except entries.EntryError as exc:
        raise _entry_problem(exc) from exc
    return one_out(_entry(request, kitsu_anime_id))


@router.delete(
    "/library/{kitsu_anime_id}", response=with_problems({204: None}, 404), summary="Remove an entry"
)
def delete_entry(request: HttpRequest, kitsu_anime_id: int) -> Any:
    if not entries.delete_entry(user_id=key_of(request).user_id, anime_kitsu_id=kitsu_anime_id):
        raise Http404(f"Your list has no entry for Kitsu anime {kitsu_anime_id}.")
    return Status(204, None)


@router.get(
    "/anime/search",
    response=with_problems({200: list[AnimeOut]}, 422, 502),
    summary="Find anime on Kitsu by title",
)
def search_anime(
    request: HttpRequest,
    q: str = Query(..., min_length=1, max_length=200),
) -> list[dict[str, Any]]:
    try:
        found = metadata.search_anime(query=q, limit=20)
    except KitsuUsageError as exc:
        raise Problem(422, "The search is not valid", exc.message) from exc
    except KitsuError as exc:
        raise Problem(502, "Kitsu's search did not answer", exc.message) from exc
    listed = set(
        LibraryEntry.objects.filter(
            user_id=key_of(request).user_id, anime__kitsu_id__in=[a["kitsu_id"] for a in found]
        ).values_list("anime__kitsu_id", flat=True)
    )
    return [
        {
            **anime,
            "start_date": anime["start_date"].isoformat() if anime["start_date"] else None,
            "in_list": anime["kitsu_id"] in listed,
        }
        for anime in found
    ]
