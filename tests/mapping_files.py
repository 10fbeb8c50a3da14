"""Small files in the two mapping datasets' formats, for the resolution tests.

The records are shaped as the real files are (docs/resolve.md cites them): Anime-Lists'
`anime-list-master.xml` and Fribb's `anime-list-full.json` in both its shapes. The Kitsu ids
are the tests' own: every test that needs a Kitsu anime stores it with `store_anime`.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import quoteattr

from kitsu_sync.models import Anime

# --- Anime-Lists -----------------------------------------------------------------------------


def mapping(
    anidbseason: int,
    tvdbseason: int | None = None,
    *,
    start: int | None = None,
    end: int | None = None,
    offset: int | None = None,
    pairs: str = "",
    tmdbseason: int | None = None,
) -> str:
    attributes = {
        "anidbseason": anidbseason,
        "tvdbseason": tvdbseason,
        "tmdbseason": tmdbseason,
        "start": start,
        "end": end,
        "offset": offset,
    }
    text = " ".join(
        f"{name}={quoteattr(str(v))}" for name, v in attributes.items() if v is not None
    )
    return f"<mapping {text}>{pairs}</mapping>"


def anime(
    anidbid: int | str,
    tvdbid: int | str = "",
    defaulttvdbseason: int | str = "",
    episodeoffset: int | str = "",
    *,
    name: str = "",
    tmdbtv: int | str = "",
    tmdbseason: int | str = "",
    tmdboffset: int | str = "",
    tmdbid: str = "",
    imdbid: str = "",
    mappings: tuple[str, ...] = (),
) -> str:
    """One `<anime>` element, its attributes in the master file's order."""
    attributes = {
        "anidbid": anidbid,
        "tvdbid": tvdbid,
        "defaulttvdbseason": defaulttvdbseason,
        "episodeoffset": episodeoffset,
        "tmdbtv": tmdbtv,
        "tmdbseason": tmdbseason,
        "tmdboffset": tmdboffset,
        "tmdbid": tmdbid,
        "imdbid": imdbid,
    }
    text = " ".join(f"{key}={quoteattr(str(value))}" for key, value in attributes.items())
    listed = f"<mapping-list>{''.join(mappings)}</mapping-list>" if mappings else ""
    return f"<anime {text}><name>{name}</name>{listed}</anime>"


def anime_lists_xml(*entries: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<anime-list>\n'
        + "\n".join(entries)
        + "\n</anime-list>\n"
    ).encode()


# --- Fribb ----------------------------------------------------------------------------------


def fribb_record(
    anidb_id: int | None,
    *,
    kitsu_id: int | None = None,
    mal_id: int | None = None,
    anilist_id: int | None = None,
    tvdb_id: int | None = None,
    tvdb_season: int | None = None,
    tvdb_offset: int | None = None,
    tmdb_tv: int | None = None,
    tmdb_movie: list[int] | None = None,
    imdb: list[str] | None = None,
    kind: str = "TV",
) -> dict[str, Any]:
    """A record in the shape Fribb's list has had since 2026."""
    record: dict[str, Any] = {"type": kind}
    for key, value in (
        ("anidb_id", anidb_id),
        ("anilist_id", anilist_id),
        ("kitsu_id", kitsu_id),
        ("mal_id", mal_id),
        ("tvdb_id", tvdb_id),
    ):
        if value is not None:
            record[key] = value
    if imdb:
        record["imdb_id"] = imdb
    if tmdb_tv is not None:
        record["themoviedb_id"] = {"tv": tmdb_tv}
    elif tmdb_movie:
        record["themoviedb_id"] = {"movie": tmdb_movie}
    if tvdb_season is not None:
        record["season"] = {"tvdb": tvdb_season}
    if tvdb_offset:
        record["episode_offset"] = {"tvdb": tvdb_offset}
    return record


def fribb_first_shape(
    anidb_id: int | None,
    *,
    kitsu_id: int | None = None,
    mal_id: int | None = None,
    anilist_id: int | None = None,
    thetvdb_id: int | str | None = None,
    themoviedb_id: int | str | None = None,
    imdb_id: str | None = None,
) -> dict[str, Any]:
    """A record in the list's first shape (`thetvdb_id`, a bare `themoviedb_id`, a string
    `imdb_id`), with the other sites' ids it also carried."""
    record: dict[str, Any] = {"anime-planet_id": "x", "notify.moe_id": "Dx225FimR"}
    for key, value in (
        ("anidb_id", anidb_id),
        ("kitsu_id", kitsu_id),
        ("mal_id", mal_id),
        ("anilist_id", anilist_id),
        ("thetvdb_id", thetvdb_id),
        ("themoviedb_id", themoviedb_id),
        ("imdb_id", imdb_id),
    ):
        if value is not None:
            record[key] = value
    return record


def fribb_json(*records: dict[str, Any]) -> bytes:
    return json.dumps(list(records), indent=2).encode()


# --- the shows the tests resolve ------------------------------------------------------------

# Cowboy Bebop: one TheTVDB season, one AniDB anime; its specials 1-3 are TVDB S0E2-4.
BEBOP = anime(
    23,
    76885,
    1,
    "",
    name="Cowboy Bebop",
    tmdbtv=30991,
    tmdbseason=1,
    mappings=(mapping(0, 0, start=1, end=3, offset=1, pairs=";4-0;"),),
)
# Attack on Titan: one AniDB anime per TheTVDB season, and season 3 split into two cours.
TITANS = (
    anime(9541, 267440, 1, name="Shingeki no Kyojin", tmdbtv=1429, tmdbseason=1),
    anime(10944, 267440, 2, name="Shingeki no Kyojin (2017)", tmdbtv=1429, tmdbseason=2),
    anime(13241, 267440, 3, name="Shingeki no Kyojin Season 3", tmdbtv=1429, tmdbseason=3),
    anime(
        14444,
        267440,
        3,
        12,
        name="Shingeki no Kyojin Season 3 (2019)",
        tmdbtv=1429,
        tmdbseason=3,
        tmdboffset=12,
    ),
)
# Seikai no Monshou, and a special of the same TheTVDB series in season 0.
SEIKAI = (
    anime(1, 72025, 1, name="Seikai no Monshou"),
    anime(6, 72025, 0, name="Seikai no Danshou: Tanjou"),
)
# Chobits: regular episodes 9 and 18 are TVDB specials; 10-17 and 19-26 shift back.
CHOBITS = anime(
    12,
    72070,
    1,
    name="Chobits",
    mappings=(
        mapping(0, 0, pairs=";1-3;2-4;"),
        mapping(1, 0, pairs=";9-1;18-2;"),
        mapping(1, 1, start=10, end=17, offset=-1),
        mapping(1, 1, start=19, end=26, offset=-2),
    ),
)
# Rizelmine: absolute numbering (`a`) across two TheTVDB seasons.
RIZELMINE = anime(
    19,
    83692,
    "a",
    name="Rizelmine",
    mappings=(mapping(1, 1, start=1, end=12), mapping(1, 2, start=13, end=24, offset=-12)),
)
MONONOKE = anime(7, "movie", "", name="Mononoke-hime", tmdbid="128", imdbid="tt0119698")

ANIME_LISTS = anime_lists_xml(BEBOP, *TITANS, *SEIKAI, CHOBITS, RIZELMINE, MONONOKE)

# The Kitsu anime of these shows: (Kitsu id, AniDB id, MyAnimeList id, episodes, title).
KITSU_ANIME = (
    (1, 23, 1, 26, "Cowboy Bebop"),
    (7442, 9541, 16498, 25, "Attack on Titan"),
    (8671, 10944, 25777, 12, "Attack on Titan Season 2"),
    (13569, 13241, 35760, 12, "Attack on Titan Season 3"),
    (41982, 14444, 38524, 10, "Attack on Titan Season 3 Part 2"),
    (265, 1, 290, 13, "Crest of the Stars"),
    (266, 6, 291, 1, "Crest of the Stars: Birth"),
    (120, 12, 59, 26, "Chobits"),
    (197, 19, 197, 24, "Rizelmine"),
    (142, 7, 164, 1, "Princess Mononoke"),
)
_TVDB = {23: 76885, 9541: 267440, 10944: 267440, 13241: 267440, 14444: 267440, 1: 72025}
_TVDB |= {6: 72025, 12: 72070, 19: 83692}
_SEASON = {23: 1, 9541: 1, 10944: 2, 13241: 3, 14444: 3, 1: 1, 6: 0, 12: 1}

FRIBB = fribb_json(
    *(
        fribb_record(
            anidb,
            kitsu_id=kitsu,
            mal_id=mal,
            anilist_id=mal,
            tvdb_id=_TVDB.get(anidb),
            tvdb_season=_SEASON.get(anidb),
            tvdb_offset=12 if anidb == 14444 else None,
            tmdb_movie=[128] if anidb == 7 else None,
            imdb=["tt0119698"] if anidb == 7 else None,
            kind="MOVIE" if anidb == 7 else "TV",
        )
        for kitsu, anidb, mal, _count, _title in KITSU_ANIME
    )
)


def store_anime(kitsu_id: int, *, episode_count: int | None, title: str = "") -> Anime:
    """The Kitsu anime as a sync would have stored it (so that resolving asks Kitsu nothing)."""
    return Anime.objects.update_or_create(
        kitsu_id=kitsu_id,
        defaults={"title": title or f"Kitsu anime {kitsu_id}", "episode_count": episode_count},
    )[0]


def store_shows() -> None:
    for kitsu, _anidb, _mal, count, title in KITSU_ANIME:
        store_anime(kitsu, episode_count=count, title=title)
