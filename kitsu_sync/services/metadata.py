"""Kitsu as a metadata source: details, search, trending, seasons and cross-site ID lookup.

Each function returns Revenge fields (see `kitsu_sync.mapping.anime_fields`), never Kitsu JSON.
"""

from __future__ import annotations

from typing import Any

from kitsu_sync.kitsu_api import KitsuUsageError
from kitsu_sync.kitsu_client import get_kitsu_client
from kitsu_sync.mapping import anime_fields
from kitsu_sync.models import Anime

SEASONS = ("winter", "spring", "summer", "fall")

# Friendly names accepted on the command line, and the Kitsu `externalSite` each stands for.
SITE_ALIASES = {
    "mal": "myanimelist/anime",
    "myanimelist": "myanimelist/anime",
    "anilist": "anilist/anime",
    "tvdb": "thetvdb/series",
    "thetvdb": "thetvdb/series",
}
# Kitsu's anime-related mapping sites (docs/kitsu-api.md §3.3).
ANIME_SITES = (
    "myanimelist/anime",
    "anilist/anime",
    "anidb",
    "thetvdb/series",
    "thetvdb/season",
    "animenewsnetwork",
    "hulu",
    "aozora",
    "trakt",
)
NUMERIC_SITES = ("myanimelist/anime", "anilist/anime", "anidb", "thetvdb/series", "thetvdb/season")


def resolve_site(site: str) -> str:
    """The Kitsu externalSite for a site name or alias, or KitsuUsageError listing the choices."""
    name = site.strip().lower()
    name = SITE_ALIASES.get(name, name)
    if name not in ANIME_SITES:
        choices = ", ".join([*ANIME_SITES, *SITE_ALIASES])
        raise KitsuUsageError(f"Unknown site {site!r}. Use one of: {choices}.")
    return name


def anime_details(*, kitsu_id: int) -> dict[str, Any]:
    """One anime with its external ids (its mappings come in the same response)."""
    return anime_fields(get_kitsu_client().anime(kitsu_id, include=("mappings",)))


def stored_anime(kitsu_id: int) -> Anime:
    """The anime as stored here; one this server never saw is asked of Kitsu and stored first
    (KitsuNotFound when Kitsu has no such anime, another KitsuError when it cannot answer)."""
    anime = Anime.objects.filter(kitsu_id=kitsu_id).first()
    if anime is not None:
        return anime
    fields = anime_details(kitsu_id=kitsu_id)
    return Anime.objects.update_or_create(
        kitsu_id=kitsu_id, defaults={k: v for k, v in fields.items() if k != "kitsu_id"}
    )[0]


def search_anime(*, query: str, limit: int = 20) -> list[dict[str, Any]]:
    if not query.strip():
        raise KitsuUsageError("The search text is empty.")
    return [anime_fields(r) for r in get_kitsu_client().search_anime(query, limit=limit)]


def trending_anime(*, limit: int = 10) -> list[dict[str, Any]]:
    return [anime_fields(r) for r in get_kitsu_client().trending_anime(limit=limit)]


def season_anime(*, season: str, year: int, limit: int | None = None) -> list[dict[str, Any]]:
    season = season.strip().lower()
    if season not in SEASONS:
        raise KitsuUsageError(f"Unknown season {season!r}. Use one of: {', '.join(SEASONS)}.")
    client = get_kitsu_client()
    return [anime_fields(r) for r in client.season_anime(season, year, limit=limit)]


def lookup_anime(*, site: str, external_id: str) -> dict[str, Any] | None:
    """The Kitsu anime an external site's id maps to, with its own external ids, or None."""
    kitsu_site = resolve_site(site)
    external_id = external_id.strip()
    if kitsu_site in NUMERIC_SITES and not external_id.isdigit():
        raise KitsuUsageError(f"{kitsu_site} ids are numbers; {external_id!r} is not.")
    found = get_kitsu_client().lookup_external(kitsu_site, external_id)
    if found is None:
        return None
    return anime_details(kitsu_id=int(found.id))
