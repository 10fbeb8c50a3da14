"""What media servers call a show, and their APIs for asking: pure parsing and a small
Django-free HTTP client for Jellyfin, Emby and Plex (docs/resolve.md, "Media servers").

An episode's provider ids are the episode's own (a TheTVDB *episode* id is no series id), so
the show's ids come from the server: Jellyfin and Emby `Items/{SeriesId}`, Plex
`/library/metadata/{grandparentRatingKey}`. Legacy Plex agents write the show's ids into the
episode's guid instead: HAMA `com.plexapp.agents.hama://anidb-3651/1/1?lang=en` and TheTVDB's
`com.plexapp.agents.thetvdb://73871/2/15?lang=en` (series, season, episode).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

import requests

_DIGITS = re.compile(r"[0-9]{1,18}")
_IMDB = re.compile(r"tt[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class MediaIds:
    """The ids a show (series, or one anime) is known by on other sites."""

    kitsu: int | None = None
    mal: int | None = None
    anilist: int | None = None
    anidb: int | None = None
    tvdb: int | None = None  # a TheTVDB series
    tmdb_tv: int | None = None
    tmdb_movie: int | None = None
    imdb: str | None = None

    def known(self) -> dict[str, str]:
        """The ids given, by site name (MappingKey.site), as strings."""
        return {
            name: str(value)
            for name in (
                "kitsu",
                "mal",
                "anilist",
                "anidb",
                "tvdb",
                "tmdb_tv",
                "tmdb_movie",
                "imdb",
            )
            if (value := getattr(self, name)) is not None
        }

    def __bool__(self) -> bool:
        return bool(self.known())


def _number(value: Any) -> int | None:
    text = (
        str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    )
    return int(text) if _DIGITS.fullmatch(text) and int(text) > 0 else None


def _imdb(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, str) else ""
    return text if _IMDB.fullmatch(text) else None


# Jellyfin/Emby ProviderIds keys (the core providers' enum names, the AniDB and AniList
# plugins', Shokofin's), compared case-insensitively.
_PROVIDER_KEYS = {
    "tvdb": "tvdb",
    "thetvdb": "tvdb",
    "tmdb": "tmdb",
    "themoviedb": "tmdb",
    "imdb": "imdb",
    "anidb": "anidb",
    "anilist": "anilist",
    "myanimelist": "mal",
    "mal": "mal",
    "kitsu": "kitsu",
}


def provider_ids(ids: Mapping[str, Any], *, movie: bool = False) -> MediaIds:
    """A series' (or movie's) ids from Jellyfin/Emby `ProviderIds`. A value that is not an id
    of its site (the AniDB plugin's "23:5" on an episode, say) is left out."""
    found: dict[str, Any] = {}
    for key, value in ids.items():
        site = _PROVIDER_KEYS.get(str(key).strip().lower())
        if site is None or site in found:
            continue
        parsed = _imdb(value) if site == "imdb" else _number(value)
        if parsed is not None:
            found[site] = parsed
    tmdb = found.pop("tmdb", None)
    return MediaIds(**found, **({"tmdb_movie": tmdb} if movie else {"tmdb_tv": tmdb}))


@dataclass(frozen=True, slots=True)
class PlexGuid:
    """What one Plex guid says: the show's ids (legacy agents), and a season/episode."""

    ids: MediaIds
    season: int | None = None
    episode: int | None = None
    # HAMA's tvdb3/tvdb4 keep the absolute episode number whatever the season.
    absolute: bool = False


# HAMA prefixes: anidb (2-4 are AniDB with other season layouts), tvdb (2-4 are TheTVDB
# layouts; 3 and 4 keep absolute episode numbers), tmdb/tsdb, imdb. HAMA's README documents
# no tvdb5 numbering: such a guid names nothing usable rather than a guessed episode.
_HAMA = re.compile(r"(anidb[2-4]?|tvdb[2-4]?|tmdb|tsdb|imdb)-([0-9a-z]+)")


def parse_plex_guid(guid: str) -> PlexGuid | None:
    """A legacy agent's guid of a show, season or episode (the show's ids in it), or a
    new-style `Guid` id of the item itself; None for guids that name no usable id
    (`plex://`, `local://`, unknown agents)."""
    scheme, sep, rest = guid.strip().partition("://")
    if not sep:
        return None
    path = rest.split("?", 1)[0].strip("/")
    parts = path.split("/")
    agent = scheme.removeprefix("com.plexapp.agents.")
    season = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    episode = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
    if agent == "hama":
        match = _HAMA.fullmatch(parts[0])
        if match is None:
            return None
        kind, value = match.groups()
        base = kind.rstrip("234")
        ids = _ids_for(base, value)
        if ids is None:
            return None
        return PlexGuid(ids, season, episode, absolute=kind in ("tvdb3", "tvdb4"))
    if agent in ("thetvdb", "tvdb", "themoviedb", "tmdb", "imdb", "anidb"):
        base = {"thetvdb": "tvdb", "themoviedb": "tmdb"}.get(agent, agent)
        ids = _ids_for(base, parts[0])
        return None if ids is None else PlexGuid(ids, season, episode)
    return None


def _ids_for(site: str, value: str) -> MediaIds | None:
    if site == "imdb":
        imdb = _imdb(value)
        return MediaIds(imdb=imdb) if imdb else None
    number = _number(value)
    if number is None:
        return None
    field = {"anidb": "anidb", "tvdb": "tvdb", "tmdb": "tmdb_tv", "tsdb": "tmdb_tv"}[site]
    return MediaIds(**{field: number})


def plex_guid_ids(guids: list[Any], *, movie: bool = False) -> MediaIds:
    """An item's ids from Plex's new-style `Guid` list (`[{"id": "tvdb://1234"}, ...]`)."""
    ids = MediaIds()
    for item in guids:
        parsed = parse_plex_guid(str(item.get("id", ""))) if isinstance(item, dict) else None
        if parsed is None:
            continue
        for name, value in parsed.ids.known().items():
            if getattr(ids, name) is None:
                ids = replace(ids, **{name: value if name == "imdb" else int(value)})
    if movie and ids.tmdb_tv is not None:
        ids = replace(ids, tmdb_movie=ids.tmdb_tv, tmdb_tv=None)
    return ids


# --- the servers' APIs ----------------------------------------------------------------------


class MediaServerError(Exception):
    """The media server could not be asked, or did not answer as it should; `message` says
    what to check."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ServerItem:
    """The fields of a media server's item that resolution needs."""

    kind: str  # "episode", "season", "series", "movie", ... (lower case)
    name: str
    ids: MediaIds
    series_key: str | None = None  # the item's show, to ask for next (Jellyfin/Emby/Plex)
    season: int | None = None
    episode: int | None = None


@dataclass
class MediaServerClient:
    kind: str  # "jellyfin", "emby" or "plex"
    url: str
    api_key: str
    user_id: str = ""  # Jellyfin/Emby: whose view of the library to ask for
    timeout: float = 10.0
    session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"MediaServerClient({self.kind!r}, {self.url!r})"

    def item(self, key: str) -> ServerItem:
        """One item of the server's library, by its id (Plex: its rating key)."""
        if not re.fullmatch(r"[0-9A-Za-z-]{1,64}", key):
            raise MediaServerError(f"{key!r} is not an item id of a media server.")
        if self.kind == "plex":
            body = self._get(
                f"/library/metadata/{quote(key, safe='')}",
                params={"includeGuids": "1"},
                headers={"X-Plex-Token": self.api_key, "Accept": "application/json"},
            )
            return _plex_item(body)
        prefix = "/emby" if self.kind == "emby" and not urlsplit(self.url).path.rstrip("/") else ""
        if self.kind == "emby" or self.user_id:
            path = f"{prefix}/Users/{quote(self.user_id, safe='')}/Items/{quote(key, safe='')}"
        else:
            path = f"/Items/{quote(key, safe='')}"
        headers = (
            {"X-Emby-Token": self.api_key}
            if self.kind == "emby"
            else {"Authorization": f'MediaBrowser Token="{self.api_key}"'}
        )
        return _browser_item(self._get(path, params=None, headers=headers))

    def _get(self, path: str, *, params: dict[str, str] | None, headers: dict[str, str]) -> Any:
        url = self.url.rstrip("/") + path
        host = urlsplit(self.url).netloc
        try:
            response = (self.session or requests).get(
                url, params=params, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise MediaServerError(
                f"{self.kind.title()} at {host} could not be reached ({type(exc).__name__})."
            ) from exc
        if response.status_code in (401, 403):
            raise MediaServerError(
                f"{self.kind.title()} at {host} refused the API key (HTTP {response.status_code})."
            )
        if response.status_code != 200:
            raise MediaServerError(
                f"{self.kind.title()} at {host} answered HTTP {response.status_code} for {path}."
            )
        try:
            return response.json()
        except ValueError as exc:
            raise MediaServerError(f"{self.kind.title()} at {host} did not answer JSON.") from exc


def _index(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _browser_item(body: Any) -> ServerItem:
    """A Jellyfin/Emby BaseItemDto."""
    if not isinstance(body, dict) or not isinstance(body.get("Type"), str):
        raise MediaServerError("The media server's item is not an item (no Type).")
    kind = body["Type"].lower()
    ids = body.get("ProviderIds") if isinstance(body.get("ProviderIds"), dict) else {}
    series_id = body.get("SeriesId")
    return ServerItem(
        kind=kind,
        name=str(body.get("Name") or ""),
        ids=provider_ids(ids, movie=kind == "movie"),
        series_key=str(series_id).replace("-", "").lower() if series_id else None,
        season=_index(body.get("ParentIndexNumber")),
        episode=_index(body.get("IndexNumber")),
    )


def _plex_item(body: Any) -> ServerItem:
    container = body.get("MediaContainer") if isinstance(body, dict) else None
    items = container.get("Metadata") if isinstance(container, dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise MediaServerError("Plex's answer holds no item (MediaContainer.Metadata).")
    item = items[0]
    kind = str(item.get("type") or "").lower()
    ids = plex_guid_ids(item.get("Guid") or [], movie=kind == "movie")
    legacy = parse_plex_guid(str(item.get("guid") or ""))
    if legacy is not None and not ids:
        ids = legacy.ids
    series_key = item.get("grandparentRatingKey")
    return ServerItem(
        kind="series" if kind == "show" else kind,
        name=str(item.get("title") or ""),
        ids=ids,
        series_key=str(series_key) if series_key is not None else None,
        season=_index(item.get("parentIndex")),
        episode=_index(item.get("index")),
    )
