"""Kitsu's catalogue for the web pages: an anime's details, a title search, trending, a season.

Each answer is kept in the database (`Anime` rows, `Anime.details_fetched_at`, and
`CatalogListing` for the lists), so that a page view costs no Kitsu request while the answer
is fresh (KITSU_METADATA_TTL for details and seasons, KITSU_SEARCH_TTL for searches and
trending). When Kitsu cannot answer, what was kept is shown, however old, and the page says
why; the pages always say how old their answer is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from kitsu_sync.kitsu_api import KitsuError, KitsuUsageError
from kitsu_sync.models import Anime, CatalogKind, CatalogListing
from kitsu_sync.services import library, metadata

SEARCH_LIMIT = 20
TRENDING_LIMIT = 20
SEASON_LIMIT = 60
# Kitsu's seasons by the month they start in.
SEASON_OF_MONTH = {1: "winter", 4: "spring", 7: "summer", 10: "fall"}


@dataclass(frozen=True)
class Answer:
    """Anime in Kitsu's order, when Kitsu gave them, and why an older answer is shown."""

    anime: list[Anime]
    fetched_at: datetime | None
    stale: str = ""  # Kitsu's error when the kept answer is shown past its time


@dataclass(frozen=True)
class Details:
    anime: Anime
    fetched_at: datetime | None
    stale: str = ""


def _fresh(fetched_at: datetime | None, kept: timedelta, now: datetime) -> bool:
    return fetched_at is not None and now - fetched_at < kept


def anime_details(*, kitsu_id: int) -> Details:
    """One anime with its external ids, from the database while fresh. Raises KitsuNotFound
    when Kitsu has no such anime, and another KitsuError when it cannot answer and nothing
    was kept."""
    now = timezone.now()
    anime = Anime.objects.filter(kitsu_id=kitsu_id).first()
    if anime is not None and _fresh(anime.details_fetched_at, settings.KITSU_METADATA_TTL, now):
        return Details(anime, anime.details_fetched_at)
    try:
        fields = metadata.anime_details(kitsu_id=kitsu_id)
    except KitsuError as exc:
        if anime is None or not exc.retryable:
            raise
        return Details(anime, anime.details_fetched_at, exc.message)
    fields["details_fetched_at"] = now
    library.upsert_anime([fields])
    return Details(Anime.objects.get(kitsu_id=kitsu_id), now)


def _listing(kind: str, key: str, kept: timedelta, fetch: Any) -> Answer:
    now = timezone.now()
    row = CatalogListing.objects.filter(kind=kind, key=key).first()
    if row is not None and _fresh(row.fetched_at, kept, now):
        return Answer(_in_order(row.kitsu_ids), row.fetched_at)
    try:
        found: list[dict[str, Any]] = fetch()
    except KitsuError as exc:
        if row is None or not exc.retryable:
            raise
        return Answer(_in_order(row.kitsu_ids), row.fetched_at, exc.message)
    library.upsert_anime(found)
    ids = [fields["kitsu_id"] for fields in found]
    CatalogListing.objects.update_or_create(
        kind=kind, key=key, defaults={"kitsu_ids": ids, "fetched_at": now}
    )
    return Answer(_in_order(ids), now)


def _in_order(kitsu_ids: list[int]) -> list[Anime]:
    found = Anime.objects.in_bulk(kitsu_ids, field_name="kitsu_id")
    return [found[kitsu_id] for kitsu_id in kitsu_ids if kitsu_id in found]


def search(*, query: str) -> Answer:
    """Kitsu's title search (KitsuUsageError for an empty query)."""
    # The query as typed, case and spacing aside: any script (a title in Japanese is one Kitsu
    # finds), and never two different queries under one key.
    key = " ".join(query.casefold().split())[:200]
    if not key:
        raise KitsuUsageError("Type part of a title to search for.")
    return _listing(
        CatalogKind.SEARCH,
        key,
        settings.KITSU_SEARCH_TTL,
        lambda: metadata.search_anime(query=query.strip(), limit=SEARCH_LIMIT),
    )


def trending() -> Answer:
    return _listing(
        CatalogKind.TRENDING,
        "",
        settings.KITSU_SEARCH_TTL,
        lambda: metadata.trending_anime(limit=TRENDING_LIMIT),
    )


def season(*, season: str, year: int) -> Answer:
    """A season's anime, most popular first (KitsuUsageError for an unknown season)."""
    if season not in metadata.SEASONS:
        raise KitsuUsageError(f"Choose one of: {', '.join(metadata.SEASONS)}.")
    return _listing(
        CatalogKind.SEASON,
        f"{year}-{season}",
        settings.KITSU_METADATA_TTL,
        lambda: metadata.season_anime(season=season, year=year, limit=SEASON_LIMIT),
    )


def current_season(today: date) -> tuple[str, int]:
    """The season `today` is in, as Kitsu names it, and its year."""
    start = max(month for month in SEASON_OF_MONTH if month <= today.month)
    return SEASON_OF_MONTH[start], today.year


def season_of(start: date | None) -> str:
    """The season an anime started in ("Fall 2026"), or ""."""
    if start is None:
        return ""
    name, year = current_season(start)
    return f"{name.title()} {year}"
