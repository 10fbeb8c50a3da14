"""The two community mapping datasets, read into plain records. Pure: no Django, no network.

- **Anime-Lists** `anime-list-master.xml` (github.com/Anime-Lists/anime-lists): per AniDB
  anime, its TheTVDB series, default season (a number, `0` for specials, `a` for absolute
  numbering) and episode offset, the same for TMDB TV, and `mapping-list` rules for single
  episodes and ranges (docs/resolve.md, "The datasets").
- **Fribb** `anime-list-full.json` (github.com/Fribb/anime-lists): per AniDB anime, its ids on
  Kitsu, MyAnimeList, AniList, TheTVDB, TMDB and IMDb. Both shapes are read: the first one
  (`thetvdb_id`, `themoviedb_id` a number, `imdb_id` a string) and the one used since 2026
  (`tvdb_id` with `season` and `episode_offset` objects, `themoviedb_id` an object with `tv`
  or `movie`, `imdb_id` a list).

Neither file is trusted: a value of the wrong shape is dropped (a sentinel such as
`tvdbid="movie"` is no id), and a record without its key is skipped, never guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

# Ids are stored as bigint.
_MAX_ID = 2**63 - 1
_IMDB = re.compile(r"tt[0-9]{1,12}")


class DatasetError(ValueError):
    """The file is not the dataset it should be (not XML/JSON, or the wrong structure)."""


def _number(value: Any) -> int | None:
    """A whole number from an attribute or JSON value (negative allowed), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?[0-9]{1,18}", text):
            return int(text)
    return None


def _id(value: Any) -> int | None:
    number = _number(value)
    return number if number is not None and 0 < number <= _MAX_ID else None


def _ids(value: Any) -> tuple[int, ...]:
    """Ids from a number, a comma-separated string or a list."""
    if isinstance(value, list):
        items: list[Any] = value
    elif isinstance(value, str):
        items = value.split(",")
    else:
        items = [value]
    found = [_id(item) for item in items]
    return tuple(dict.fromkeys(number for number in found if number is not None))


def _imdb_ids(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    found = (str(item).strip() for item in items if isinstance(item, str))
    return tuple(dict.fromkeys(item for item in found if _IMDB.fullmatch(item)))


# --- Anime-Lists ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Season:
    """A season number as Anime-Lists writes it: a number (0: specials), or absolute."""

    number: int | None = None  # None with absolute=False: no season given
    absolute: bool = False

    @classmethod
    def parse(cls, value: str | None) -> Season:
        text = (value or "").strip()
        if text == "a":
            return cls(absolute=True)
        number = _number(text)
        return cls(number=number if number is not None and number >= 0 else None)


@dataclass(frozen=True, slots=True)
class EpisodeRule:
    """One `<mapping>`: AniDB episodes of one kind (regular or special) to one season.

    `pairs` maps an AniDB episode to its episodes in that season (an empty tuple: explicitly
    none); `start`..`end` with `offset` maps a range. A pair beats a range for its episode.
    """

    anidb_special: bool  # anidbseason="0": AniDB's specials ("S" episodes)
    tvdb_season: int | None
    tmdb_season: int | None
    start: int | None = None
    end: int | None = None
    offset: int = 0
    pairs: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def covers(self, anidb_episode: int) -> bool:
        """True when this rule says where `anidb_episode` goes (a pair or the range)."""
        if any(source == anidb_episode for source, _ in self.pairs):
            return True
        return self.start is not None and self.start <= anidb_episode <= (self.end or self.start)


@dataclass(frozen=True, slots=True)
class AnimeListsEntry:
    anidb_id: int
    name: str = ""
    tvdb_id: int | None = None
    tvdb_kind: str = ""  # what tvdbid said instead of an id: "movie", "OVA", "hentai", ...
    tvdb_season: Season = field(default_factory=Season)
    tvdb_offset: int = 0
    tmdb_tv_id: int | None = None
    tmdb_season: Season = field(default_factory=Season)
    tmdb_offset: int = 0
    tmdb_movie_ids: tuple[int, ...] = ()
    imdb_ids: tuple[str, ...] = ()
    rules: tuple[EpisodeRule, ...] = ()


def _pairs(text: str | None) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """`;1-5;2-6+7;3-0;` as ((1, (5,)), (2, (6, 7)), (3, ())); malformed pairs are left out."""
    pairs = []
    for item in (text or "").split(";"):
        source, dash, targets = item.strip().partition("-")
        anidb_episode = _number(source)
        numbers = [_number(target) for target in targets.split("+")] if dash else [None]
        if anidb_episode is None or anidb_episode < 0 or any(n is None for n in numbers):
            continue
        pairs.append((anidb_episode, tuple(n for n in numbers if n)))  # 0: explicitly none
    return tuple(pairs)


def _rule(element: Any) -> EpisodeRule | None:
    get = element.attrib.get
    kind = _number(get("anidbseason"))
    if kind not in (0, 1):
        return None
    tvdb_season = Season.parse(get("tvdbseason")).number
    tmdb_season = Season.parse(get("tmdbseason")).number
    start, end = _number(get("start")), _number(get("end"))
    return EpisodeRule(
        anidb_special=kind == 0,
        tvdb_season=tvdb_season,
        tmdb_season=tmdb_season,
        start=start if start is not None and start > 0 else None,
        end=end if end is not None and end > 0 else None,
        offset=_number(get("offset")) or 0,
        pairs=_pairs(element.text),
    )


def _anime_lists_entry(element: Any) -> AnimeListsEntry | None:
    get = element.attrib.get
    anidb_id = _id(get("anidbid"))
    if anidb_id is None:
        return None
    tvdb_raw = (get("tvdbid") or "").strip()
    tvdb_id = _id(tvdb_raw)
    rules = [_rule(rule) for rule in element.iterfind("mapping-list/mapping")]
    return AnimeListsEntry(
        anidb_id=anidb_id,
        name=(element.findtext("name") or "").strip(),
        tvdb_id=tvdb_id,
        tvdb_kind="" if tvdb_id is not None else tvdb_raw,
        tvdb_season=Season.parse(get("defaulttvdbseason")),
        tvdb_offset=_number(get("episodeoffset")) or 0,
        tmdb_tv_id=_id(get("tmdbtv")),
        tmdb_season=Season.parse(get("tmdbseason")),
        tmdb_offset=_number(get("tmdboffset")) or 0,
        tmdb_movie_ids=_ids(get("tmdbid") or ""),
        imdb_ids=_imdb_ids(get("imdbid")),
        rules=tuple(rule for rule in rules if rule is not None),
    )


def read_anime_lists(stream: IO[bytes]) -> Iterator[AnimeListsEntry]:
    """The entries of an Anime-Lists XML file, one at a time (the file is read as a stream)."""
    seen_root = False
    try:
        for event, element in iterparse(stream, events=("start", "end")):
            if event == "start":
                if not seen_root and element.tag != "anime-list":
                    raise DatasetError(
                        f"This is not an Anime-Lists file: its root is <{element.tag}>, "
                        "not <anime-list>."
                    )
                seen_root = True
                continue
            if element.tag == "anime":
                entry = _anime_lists_entry(element)
                element.clear()
                if entry is not None:
                    yield entry
    except SyntaxError as exc:  # ElementTree's ParseError
        raise DatasetError(f"The Anime-Lists file is not well-formed XML ({exc}).") from exc
    except DefusedXmlException as exc:  # entities or a DTD: never in the real file
        raise DatasetError(f"The Anime-Lists file holds what no list needs ({exc!r}).") from exc


# --- Fribb ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FribbEntry:
    anidb_id: int | None = None
    kitsu_id: int | None = None
    mal_id: int | None = None
    anilist_id: int | None = None
    tvdb_id: int | None = None
    tvdb_season: int | None = None
    tvdb_offset: int = 0
    tmdb_tv_id: int | None = None
    tmdb_season: int | None = None
    tmdb_offset: int = 0
    tmdb_movie_ids: tuple[int, ...] = ()
    imdb_ids: tuple[str, ...] = ()
    kind: str = ""  # Fribb's `type`: TV, MOVIE, OVA, ONA, SPECIAL

    def ids(self) -> dict[str, tuple[str, ...]]:
        """Every id this record answers to, by site."""
        single = {
            "anidb": self.anidb_id,
            "kitsu": self.kitsu_id,
            "mal": self.mal_id,
            "anilist": self.anilist_id,
            "tvdb": self.tvdb_id,
            "tmdb_tv": self.tmdb_tv_id,
        }
        found = {site: (str(value),) for site, value in single.items() if value is not None}
        if self.tmdb_movie_ids:
            found["tmdb_movie"] = tuple(str(value) for value in self.tmdb_movie_ids)
        if self.imdb_ids:
            found["imdb"] = self.imdb_ids
        return found


def _tmdb(record: dict[str, Any]) -> tuple[int | None, tuple[int, ...]]:
    """(TV id, movie ids): from the `{"tv": n}` / `{"movie": [...]}` object, or from the first
    shape's bare number, which is a TV id for a TheTVDB series and a movie id for a movie."""
    value = record.get("themoviedb_id")
    if isinstance(value, dict):
        return _id(value.get("tv")), _ids(value.get("movie") or [])
    number = _id(value)
    if number is None:
        return None, ()  # -1, an IMDb id by mistake, or nothing
    tvdb = record.get("thetvdb_id")
    if _id(tvdb) is not None:
        return number, ()
    if isinstance(tvdb, str) and tvdb.strip().lower() == "movie":
        return None, (number,)
    return None, ()  # TV or movie: the first shape does not say, and a guess could be wrong


def _pair(record: dict[str, Any], name: str) -> tuple[int | None, int | None]:
    value = record.get(name)
    if not isinstance(value, dict):
        return None, None
    return _number(value.get("tvdb")), _number(value.get("tmdb"))


def fribb_entry(record: Any) -> FribbEntry | None:
    """One record of either shape, or None when it names no AniDB, Kitsu or MyAnimeList id."""
    if not isinstance(record, dict):
        return None
    tmdb_tv_id, tmdb_movie_ids = _tmdb(record)
    tvdb_season, tmdb_season = _pair(record, "season")
    tvdb_offset, tmdb_offset = _pair(record, "episode_offset")
    kind = record.get("type")
    entry = FribbEntry(
        anidb_id=_id(record.get("anidb_id")),
        kitsu_id=_id(record.get("kitsu_id")),
        mal_id=_id(record.get("mal_id")),
        anilist_id=_id(record.get("anilist_id")),
        tvdb_id=_id(record.get("tvdb_id", record.get("thetvdb_id"))),
        tvdb_season=tvdb_season if tvdb_season is not None and tvdb_season >= 0 else None,
        tvdb_offset=tvdb_offset or 0,
        tmdb_tv_id=tmdb_tv_id,
        tmdb_season=tmdb_season if tmdb_season is not None and tmdb_season >= 0 else None,
        tmdb_offset=tmdb_offset or 0,
        tmdb_movie_ids=tmdb_movie_ids,
        imdb_ids=_imdb_ids(record.get("imdb_id")),
        kind=kind.upper() if isinstance(kind, str) else "",
    )
    if entry.anidb_id is None and entry.kitsu_id is None and entry.mal_id is None:
        return None
    return entry


def read_fribb(stream: IO[bytes]) -> Iterator[FribbEntry]:
    """The records of a Fribb `anime-list-full.json` (or `-mini.json`) file, one at a time:
    each object of the array is decoded on its own, so the whole list is never in memory as
    Python objects at once."""
    try:
        text = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"The Fribb file is not JSON ({exc}).") from exc
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position < len(text) and text[position] in '{"0123456789-tfn':
        raise DatasetError("This is not a Fribb anime list: it is not a JSON array of records.")
    if not text.startswith("[", position):
        raise DatasetError("The Fribb file is not JSON (it does not start with [).")
    position = _skip_space(text, position + 1)
    if text.startswith("]", position):
        return
    while True:
        try:
            record, position = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise DatasetError(f"The Fribb file is not JSON ({exc}).") from exc
        entry = fribb_entry(record)
        if entry is not None:
            yield entry
        position = _skip_space(text, position)
        if text.startswith("]", position):
            return
        if not text.startswith(",", position):
            raise DatasetError(f"The Fribb file is not JSON (expected , or ] at {position}).")
        position = _skip_space(text, position + 1)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


# --- as stored ------------------------------------------------------------------------------


def anime_lists_json(entry: AnimeListsEntry) -> dict[str, Any]:
    """An entry as a JSON object (MappingRecord.data); `anime_lists_from_json` reads it back."""
    return {
        "anidb_id": entry.anidb_id,
        "name": entry.name,
        "tvdb_id": entry.tvdb_id,
        "tvdb_kind": entry.tvdb_kind,
        "tvdb_season": _season_json(entry.tvdb_season),
        "tvdb_offset": entry.tvdb_offset,
        "tmdb_tv_id": entry.tmdb_tv_id,
        "tmdb_season": _season_json(entry.tmdb_season),
        "tmdb_offset": entry.tmdb_offset,
        "tmdb_movie_ids": list(entry.tmdb_movie_ids),
        "imdb_ids": list(entry.imdb_ids),
        "rules": [
            [
                rule.anidb_special,
                rule.tvdb_season,
                rule.tmdb_season,
                rule.start,
                rule.end,
                rule.offset,
                [[source, list(targets)] for source, targets in rule.pairs],
            ]
            for rule in entry.rules
        ],
    }


def _season_json(season: Season) -> int | str | None:
    return "a" if season.absolute else season.number


def anime_lists_from_json(data: dict[str, Any]) -> AnimeListsEntry:
    return AnimeListsEntry(
        anidb_id=data["anidb_id"],
        name=data["name"],
        tvdb_id=data["tvdb_id"],
        tvdb_kind=data["tvdb_kind"],
        tvdb_season=Season.parse(
            str(data["tvdb_season"] if data["tvdb_season"] is not None else "")
        ),
        tvdb_offset=data["tvdb_offset"],
        tmdb_tv_id=data["tmdb_tv_id"],
        tmdb_season=Season.parse(
            str(data["tmdb_season"] if data["tmdb_season"] is not None else "")
        ),
        tmdb_offset=data["tmdb_offset"],
        tmdb_movie_ids=tuple(data["tmdb_movie_ids"]),
        imdb_ids=tuple(data["imdb_ids"]),
        rules=tuple(
            EpisodeRule(
                anidb_special=special,
                tvdb_season=tvdb_season,
                tmdb_season=tmdb_season,
                start=start,
                end=end,
                offset=offset,
                pairs=tuple((source, tuple(targets)) for source, targets in pairs),
            )
            for special, tvdb_season, tmdb_season, start, end, offset, pairs in data["rules"]
        ),
    )


def anime_lists_ids(entry: AnimeListsEntry) -> dict[str, tuple[str, ...]]:
    """The ids an Anime-Lists entry is looked up by."""
    found: dict[str, tuple[str, ...]] = {"anidb": (str(entry.anidb_id),)}
    if entry.tvdb_id is not None:
        found["tvdb"] = (str(entry.tvdb_id),)
    if entry.tmdb_tv_id is not None:
        found["tmdb_tv"] = (str(entry.tmdb_tv_id),)
    if entry.tmdb_movie_ids:
        found["tmdb_movie"] = tuple(str(value) for value in entry.tmdb_movie_ids)
    if entry.imdb_ids:
        found["imdb"] = entry.imdb_ids
    return found


def fribb_json(entry: FribbEntry) -> dict[str, Any]:
    """A record as a JSON object (MappingRecord.data); `fribb_from_json` reads it back."""
    return asdict(entry)


def fribb_from_json(data: dict[str, Any]) -> FribbEntry:
    return FribbEntry(
        **{
            **data,
            "tmdb_movie_ids": tuple(data["tmdb_movie_ids"]),
            "imdb_ids": tuple(data["imdb_ids"]),
        }
    )
