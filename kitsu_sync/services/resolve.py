"""Which Kitsu anime and episode a media server's item is: `resolve`.

In order (docs/resolve.md has the cases, with what each resolves to and from which source):

1. the user's own overrides ("this series (season) is that Kitsu anime", "ignore it");
2. direct ids (Kitsu, MyAnimeList, AniList, AniDB; TMDB movie and IMDb for films) through
   the datasets, then Kitsu's `/mappings` (cached in the database, answers "none" too);
3. TheTVDB (or TMDB TV) series + season + episode through Anime-Lists (`kitsu_sync.episodes`),
   then AniDB -> Kitsu through Fribb's list or Kitsu's `/mappings`;
4. absolute episode numbers across the anime of a show;
5. a title search on Kitsu, only when the server named no id at all, accepted only when
   exactly one candidate fits the title, the season and the episode count.

A wrong match would silently corrupt the user's Kitsu list, so whenever sources disagree or a
step has more than one answer, the answer is `Unmatched` with the candidates, never a guess.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from kitsu_sync.datasets import (
    AnimeListsEntry,
    FribbEntry,
    Season,
    anime_lists_from_json,
    fribb_from_json,
)
from kitsu_sync.episodes import (
    AniDbEpisode,
    ChainLink,
    locate_absolute_episode,
    locate_episode,
    walk_absolute,
)
from kitsu_sync.kitsu_api import KitsuError
from kitsu_sync.kitsu_client import get_kitsu_client
from kitsu_sync.mapping import anime_fields
from kitsu_sync.media_servers import MediaIds
from kitsu_sync.models import Anime, MappingKey, MappingRecord, MappingSource, MediaOverride

logger = logging.getLogger(__name__)

# Kitsu's `/mappings` site for each id a server may send (docs/kitsu-api.md §3.3).
KITSU_SITES = {
    "mal": "myanimelist/anime",
    "anilist": "anilist/anime",
    "anidb": "anidb",
    "tvdb": "thetvdb/series",
}
# The ids that name one anime (rather than a show of several).
DIRECT_SITES = ("kitsu", "mal", "anilist", "anidb", "tmdb_movie", "imdb")
SITE_NAMES = {
    "kitsu": "Kitsu",
    "mal": "MyAnimeList",
    "anilist": "AniList",
    "anidb": "AniDB",
    "tvdb": "TheTVDB",
    "tmdb_tv": "TMDB TV",
    "tmdb_movie": "TMDB movie",
    "imdb": "IMDb",
}


class Confidence(StrEnum):
    EXACT = "exact"  # the server named the Kitsu anime, or the user chose it
    MAPPED = "mapped"  # ids mapped by the datasets or Kitsu's /mappings
    COUNTED = "counted"  # an absolute episode counted across a show's anime
    TITLE = "title"  # the only Kitsu title search result that fits


@dataclass(frozen=True)
class Match:
    kitsu_id: int
    episode: int | None  # within that anime, from 1 (None: the server named no episode)
    how: tuple[str, ...]  # each step that led here, in words
    confidence: Confidence

    @property
    def source(self) -> str:
        return " -> ".join(self.how)


@dataclass(frozen=True)
class Candidate:
    kitsu_id: int | None
    episode: int | None
    source: str


@dataclass(frozen=True)
class Unmatched:
    reason: str
    tried: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    ignored: bool = False  # the user chose to ignore this series


Resolution = Match | Unmatched


# --- what the database holds --------------------------------------------------------------------


@dataclass
class _Known:
    """The mapping records for a set of ids, read in one query."""

    anime_lists: list[AnimeListsEntry] = field(default_factory=list)
    fribb: list[FribbEntry] = field(default_factory=list)
    # (site, id) -> Kitsu anime ids Kitsu's /mappings gave (empty: none), while still fresh.
    kitsu: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    @classmethod
    def read(cls, keys: Iterable[tuple[str, str]]) -> _Known:
        known = cls()
        condition = Q()
        for site, value in keys:
            condition |= Q(site=site, value=value)
        if not condition:
            return known
        now = timezone.now()
        rows = MappingKey.objects.filter(condition).values_list(
            "record_id", "site", "value", "record__source", "record__data", "record__fetched_at"
        )
        seen: set[int] = set()
        for record_id, site, value, source, data, fetched_at in rows:
            if source == MappingSource.KITSU:
                if now - fetched_at < _cache_ttl(data["kitsu_ids"]):
                    known.kitsu[(site, value)] = data["kitsu_ids"]
                continue
            if record_id in seen:
                continue
            seen.add(record_id)
            if source == MappingSource.ANIME_LISTS:
                known.anime_lists.append(anime_lists_from_json(data))
            else:
                known.fribb.append(fribb_from_json(data))
        return known

    def fribb_kitsu_ids(self, site: str, value: str) -> set[int]:
        attribute = {"tmdb_movie": "tmdb_movie_ids", "imdb": "imdb_ids"}.get(site, f"{site}_id")
        found = set()
        for entry in self.fribb:
            held = getattr(entry, attribute)
            matches = (
                value in {str(item) for item in held}
                if isinstance(held, tuple)
                else str(held) == value
            )
            if matches and entry.kitsu_id is not None:
                found.add(entry.kitsu_id)
        return found

    def series_entries(self) -> list[AnimeListsEntry]:
        """Anime-Lists entries, or when that dataset is absent, Fribb's season and offset."""
        if self.anime_lists:
            return self.anime_lists
        return [
            AnimeListsEntry(
                anidb_id=entry.anidb_id,
                tvdb_id=entry.tvdb_id,
                tvdb_season=Season(number=entry.tvdb_season),
                tvdb_offset=entry.tvdb_offset,
                tmdb_tv_id=entry.tmdb_tv_id,
                tmdb_season=Season(number=entry.tmdb_season),
                tmdb_offset=entry.tmdb_offset,
            )
            for entry in self.fribb
            if entry.anidb_id is not None
        ]


def _cache_ttl(kitsu_ids: list[int]) -> timedelta:
    """How long an answer of Kitsu's /mappings is kept (an answer "none" for less time)."""
    return settings.KITSU_MAPPING_CACHE_TTL if kitsu_ids else settings.KITSU_MAPPING_MISS_TTL


def _kitsu_mapped(known: _Known, site: str, value: str) -> tuple[list[int], str]:
    """Kitsu's /mappings answer for an id (cached, or asked now and cached); (ids, source)."""
    cached = known.kitsu.get((site, value))
    where = f"Kitsu's /mappings ({KITSU_SITES[site]} {value})"
    if cached is not None:
        return cached, where + ", cached"
    try:
        found = [int(item.id) for item in get_kitsu_client().mapped_anime(KITSU_SITES[site], value)]
    except KitsuError as exc:
        if exc.retryable:
            raise  # Kitsu is down or busy: a later attempt will know more than "no match"
        logger.info("Kitsu's mappings refused %s %s: %s", site, value, exc.message)
        return [], f"{where}: refused ({exc.message})"
    record = MappingRecord.objects.create(
        source=MappingSource.KITSU,
        data={"site": site, "external_id": value, "kitsu_ids": found},
        fetched_at=timezone.now(),
    )
    MappingKey.objects.filter(record__source=MappingSource.KITSU, site=site, value=value).exclude(
        record=record
    ).delete()
    MappingKey.objects.create(record=record, site=site, value=value)
    known.kitsu[(site, value)] = found
    return found, where


# --- the user's overrides -------------------------------------------------------------------


_OVERRIDE_ORDER = (
    "tvdb",
    "tmdb_tv",
    "anidb",
    "mal",
    "anilist",
    "kitsu",
    "tmdb_movie",
    "imdb",
    "title",
)


def _override(user_id: int, keys: dict[str, str], season: int | None) -> MediaOverride | None:
    condition = Q()
    for site, value in keys.items():
        condition |= Q(site=site, external_id=value)
    if not condition:
        return None
    seasons = Q(season__isnull=True) | (Q(season=season) if season is not None else Q())
    found = list(MediaOverride.objects.filter(condition, seasons, user_id=user_id))
    found.sort(
        key=lambda o: (
            o.season is None,
            _OVERRIDE_ORDER.index(o.site) if o.site in _OVERRIDE_ORDER else 99,
        )
    )
    return found[0] if found else None


def _apply_override(override: MediaOverride, episode: int | None) -> Resolution:
    where = f"your choice for {SITE_NAMES.get(override.site, override.site)} {override.external_id}"
    if override.season is not None:
        where += f" season {override.season}"
    if override.ignore:
        return Unmatched(f"You chose to ignore this series ({where}).", (where,), ignored=True)
    assert override.kitsu_id is not None
    number = None if episode is None else episode + override.episode_offset
    if number is not None and number < 1:
        return Unmatched(
            f"Episode {episode} is before the first episode of Kitsu anime {override.kitsu_id} "
            f"with the offset you chose ({override.episode_offset}).",
            (where,),
        )
    return Match(override.kitsu_id, number, (where,), Confidence.EXACT)


# --- Kitsu anime and their episode counts ----------------------------------------------------


def _episode_counts(kitsu_ids: Iterable[int]) -> dict[int, int | None]:
    """Each anime's episode count (None: not known), read from the stored anime; anime not
    stored yet are asked of Kitsu and stored."""
    wanted = set(kitsu_ids)
    counts = dict(
        Anime.objects.filter(kitsu_id__in=wanted).values_list("kitsu_id", "episode_count")
    )
    for kitsu_id in wanted - counts.keys():
        try:
            fields = anime_fields(get_kitsu_client().anime(kitsu_id, include=("mappings",)))
        except KitsuError as exc:
            if exc.retryable:
                raise
            logger.info("Kitsu anime %s could not be read: %s", kitsu_id, exc.message)
            counts[kitsu_id] = None
            continue
        Anime.objects.update_or_create(
            kitsu_id=kitsu_id, defaults={k: v for k, v in fields.items() if k != "kitsu_id"}
        )
        counts[kitsu_id] = fields["episode_count"]
    return counts


def _within(count: int | None, episode: int | None) -> bool:
    return episode is None or count is None or count == 0 or episode <= count


# --- the steps ------------------------------------------------------------------------------


@dataclass
class _Attempt:
    """One resolution's inputs and what it has tried so far."""

    ids: MediaIds
    season: int | None
    episode: int | None
    known: _Known
    tried: list[str] = field(default_factory=list)

    def unmatched(self, reason: str, candidates: Iterable[Candidate] = ()) -> Unmatched:
        return Unmatched(reason, tuple(self.tried), tuple(candidates))


def _direct(attempt: _Attempt) -> dict[int, list[str]]:
    """Kitsu anime the ids that name one anime point at: kitsu id -> how."""
    found: dict[int, list[str]] = {}
    keys = attempt.ids.known()
    for site in DIRECT_SITES:
        value = keys.get(site)
        if value is None:
            continue
        name = f"{SITE_NAMES[site]} {value}"
        if site == "kitsu":
            found.setdefault(int(value), []).append("the Kitsu id given")
            continue
        kitsu_ids = attempt.known.fribb_kitsu_ids(site, value)
        source = f"Fribb's list: {name}"
        if not kitsu_ids and site in KITSU_SITES:
            ids, source = _kitsu_mapped(attempt.known, site, value)
            kitsu_ids = set(ids)
        attempt.tried.append(source + _named(kitsu_ids))
        for kitsu_id in kitsu_ids:
            found.setdefault(kitsu_id, []).append(f"{source} is Kitsu {kitsu_id}")
    return found


def _named(kitsu_ids: Iterable[int]) -> str:
    """ " is Kitsu 1" / " is Kitsu 1, 2" / ": no Kitsu anime", to end a step's description."""
    listed = ", ".join(str(k) for k in sorted(kitsu_ids))
    return f" is Kitsu {listed}" if listed else ": no Kitsu anime"


def _kitsu_for_anidb(attempt: _Attempt, anidb_id: int) -> tuple[set[int], str]:
    kitsu_ids = attempt.known.fribb_kitsu_ids("anidb", str(anidb_id))
    if kitsu_ids:
        return kitsu_ids, f"Fribb's list: AniDB {anidb_id}" + _named(kitsu_ids)
    # Not among the series' records (Fribb lists it without the series id): ask once more.
    extra = _Known.read([("anidb", str(anidb_id))])
    attempt.known.fribb.extend(extra.fribb)
    attempt.known.kitsu.update(extra.kitsu)
    kitsu_ids = extra.fribb_kitsu_ids("anidb", str(anidb_id))
    if kitsu_ids:
        return kitsu_ids, f"Fribb's list: AniDB {anidb_id}" + _named(kitsu_ids)
    ids, source = _kitsu_mapped(attempt.known, "anidb", str(anidb_id))
    return set(ids), source + _named(ids)


def _series(attempt: _Attempt) -> tuple[str, int] | None:
    """The show's TheTVDB (else TMDB TV) series id."""
    if attempt.ids.tvdb is not None:
        return "tvdb", attempt.ids.tvdb
    if attempt.ids.tmdb_tv is not None:
        return "tmdb", attempt.ids.tmdb_tv
    return None


def _located(attempt: _Attempt, provider: str, series_id: int) -> list[AniDbEpisode]:
    entries = attempt.known.series_entries()
    if attempt.season is None:
        return locate_absolute_episode(
            entries, provider=provider, series_id=series_id, episode=attempt.episode or 0
        )
    return locate_episode(
        entries,
        provider=provider,
        series_id=series_id,
        season=attempt.season,
        episode=attempt.episode or 0,
    )


def _by_series(attempt: _Attempt) -> Resolution | None:
    """TheTVDB/TMDB season and episode through the datasets; None when they know nothing."""
    series = _series(attempt)
    if series is None or attempt.episode is None:
        return None
    provider, series_id = series
    where = f"{'TheTVDB' if provider == 'tvdb' else 'TMDB TV'} {series_id}"
    located = _located(attempt, provider, series_id)
    if not located and attempt.season is None:
        return _absolute_walk(attempt, provider, series_id)
    if not located:
        attempt.tried.append(
            f"the datasets: nothing for {where} season {attempt.season} episode {attempt.episode}"
        )
        return None
    if len(located) > 1:
        return attempt.unmatched(
            f"{where} season {attempt.season} episode {attempt.episode} is more than one AniDB "
            "episode in Anime-Lists; choose the Kitsu anime yourself.",
            [Candidate(None, c.number, c.rule) for c in located],
        )
    return _to_kitsu(attempt, located[0])


def _to_kitsu(
    attempt: _Attempt, located: AniDbEpisode, confidence: Confidence = Confidence.MAPPED
) -> Resolution:
    attempt.tried.append(located.rule)
    if located.special:
        return attempt.unmatched(
            f"That is AniDB {located.anidb_id}'s special {located.number}, which Kitsu counts in "
            "a separate entry that no dataset names; choose the Kitsu anime yourself.",
            [Candidate(None, located.number, located.rule)],
        )
    kitsu_ids, source = _kitsu_for_anidb(attempt, located.anidb_id)
    attempt.tried.append(source)
    if len(kitsu_ids) != 1:
        reason = (
            f"No Kitsu anime is known for AniDB {located.anidb_id}."
            if not kitsu_ids
            else f"AniDB {located.anidb_id} maps to several Kitsu anime."
        )
        return attempt.unmatched(
            reason, [Candidate(k, located.number, source) for k in sorted(kitsu_ids)]
        )
    (kitsu_id,) = kitsu_ids
    count = _episode_counts([kitsu_id])[kitsu_id]
    if not _within(count, located.number):
        return attempt.unmatched(
            f"Episode {located.number} of Kitsu anime {kitsu_id} is beyond the {count} episodes "
            "Kitsu lists, and no later anime of the show continues it.",
            [Candidate(kitsu_id, located.number, source)],
        )
    return Match(kitsu_id, located.number, (located.rule, source), confidence)


def _absolute_walk(attempt: _Attempt, provider: str, series_id: int) -> Resolution | None:
    """An absolute episode number across a show numbered by season in the datasets."""
    entries = [
        entry
        for entry in attempt.known.series_entries()
        if (entry.tvdb_id if provider == "tvdb" else entry.tmdb_tv_id) == series_id
    ]
    seasons = [
        (entry.tvdb_season if provider == "tvdb" else entry.tmdb_season, entry) for entry in entries
    ]
    numbered = [
        (season.number, entry) for season, entry in seasons if season.number and season.number >= 1
    ]
    if not numbered:
        attempt.tried.append(f"the datasets: no anime of {series_id} numbered by season")
        return None
    kitsu_by_anidb = {}
    for _, entry in numbered:
        ids = attempt.known.fribb_kitsu_ids("anidb", str(entry.anidb_id))
        kitsu_by_anidb[entry.anidb_id] = next(iter(ids)) if len(ids) == 1 else None
    counts = _episode_counts(k for k in kitsu_by_anidb.values() if k is not None)
    chain = [
        ChainLink(
            entry.anidb_id,
            number,
            entry.tvdb_offset if provider == "tvdb" else entry.tmdb_offset,
            counts.get(kitsu_by_anidb[entry.anidb_id]) if kitsu_by_anidb[entry.anidb_id] else None,
        )
        for number, entry in numbered
    ]
    walked = walk_absolute(chain, attempt.episode or 0)
    if isinstance(walked, str):
        return attempt.unmatched(f"Absolute episode {attempt.episode}: {walked}.")
    return _to_kitsu(attempt, walked, Confidence.COUNTED)


_WORDS = re.compile(r"[^0-9a-z]+")


def normalised_title(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return " ".join(_WORDS.split(text)).strip()


def _by_title(attempt: _Attempt, title: str) -> Resolution:
    """The last step: a Kitsu title search whose one fitting result is taken."""
    if attempt.season == 0:
        return attempt.unmatched(
            f"A title search cannot tell which Kitsu anime holds {title!r}'s specials "
            "(season 0); choose it yourself."
        )
    if attempt.season is not None and attempt.season > 1:
        return attempt.unmatched(
            f"A title search cannot tell which of {title!r}'s anime season {attempt.season} is; "
            "choose the Kitsu anime yourself."
        )
    wanted = normalised_title(title)
    try:
        results = get_kitsu_client().search_anime(title, limit=20)
    except KitsuError as exc:
        if exc.retryable:
            raise
        return attempt.unmatched(f"Kitsu's title search failed ({exc.message}).")
    fitting = []
    for resource in results:
        fields = anime_fields(resource)
        titles = {fields["title"], fields["title_en"], fields["title_native"]}
        titles |= {t for t in (resource.attr("titles") or {}).values() if isinstance(t, str)}
        if wanted in {normalised_title(t) for t in titles if t} and _within(
            fields["episode_count"], attempt.episode
        ):
            fitting.append(fields)
    attempt.tried.append(
        f"Kitsu's title search for {title!r}: {len(fitting)} of {len(results)} fit"
    )
    if len(fitting) != 1:
        reason = (
            f"No Kitsu anime is titled {title!r}."
            if not fitting
            else f"{len(fitting)} Kitsu anime fit the title {title!r}; choose one yourself."
        )
        return attempt.unmatched(
            reason, [Candidate(f["kitsu_id"], attempt.episode, "title search") for f in fitting]
        )
    chosen = fitting[0]
    return Match(chosen["kitsu_id"], attempt.episode, (attempt.tried[-1],), Confidence.TITLE)


def _reconcile_direct(attempt: _Attempt, direct: dict[int, list[str]]) -> Resolution | None:
    """The answer of the direct ids when they agree and fit the episode; None to go on."""
    if len(direct) > 1:
        return attempt.unmatched(
            "These ids point at different Kitsu anime.",
            [Candidate(k, attempt.episode, "; ".join(how)) for k, how in sorted(direct.items())],
        )
    ((kitsu_id, how),) = direct.items()
    if attempt.season == 0:
        attempt.tried.append(f"Kitsu {kitsu_id} is the show; season 0 holds its specials")
        return None
    if attempt.season is not None and attempt.season > 1:
        attempt.tried.append(f"Kitsu {kitsu_id} names the show, not its season {attempt.season}")
        return None
    count = _episode_counts([kitsu_id])[kitsu_id]
    exact = attempt.ids.kitsu == kitsu_id
    if not _within(count, attempt.episode):
        beyond = f"episode {attempt.episode} is beyond Kitsu {kitsu_id}'s {count} episodes"
        if exact and count:
            # The caller named this very Kitsu anime: which anime is not in doubt, so the
            # episode is counted as its last (an id mapped from another site goes on instead:
            # the episode may belong to the next season's entry).
            return Match(kitsu_id, count, (*how, f"{beyond}: counted as {count}"), Confidence.EXACT)
        attempt.tried.append(beyond)
        return None
    confidence = Confidence.EXACT if exact else Confidence.MAPPED
    return Match(kitsu_id, attempt.episode, tuple(how), confidence)


def _show_of(attempt: _Attempt) -> set[int]:
    """The Kitsu anime the datasets list for the show's series id."""
    series = _series(attempt)
    if series is None:
        return set()
    provider, series_id = series
    attribute = "tvdb_id" if provider == "tvdb" else "tmdb_tv_id"
    return {
        e.kitsu_id for e in attempt.known.fribb if getattr(e, attribute) == series_id and e.kitsu_id
    }


def _user_choice(
    user_id: int, keys: dict[str, str], title: str | None, season: int | None, episode: int | None
) -> Resolution | None:
    """The user's override for this show. A show is remembered by its best id, or by its
    title when it came with none (its media server could not be asked, say): a choice made
    for the title still holds once the ids are known, below any choice made for an id."""
    override_keys = dict(keys)
    if title:
        override_keys["title"] = normalised_title(title)
    override = _override(user_id, override_keys, season)
    return None if override is None else _apply_override(override, episode)


def _by_ids(attempt: _Attempt) -> Resolution:
    """Steps 2 to 4: the direct ids, then the show's series and episode."""
    direct = _direct(attempt)
    if direct:
        answer = _reconcile_direct(attempt, direct)
        if answer is not None:
            return answer
    by_series = _by_series(attempt)
    if isinstance(by_series, Match) and direct:
        strangers = set(direct) - (_show_of(attempt) | {by_series.kitsu_id})
        if strangers:
            return attempt.unmatched(
                "The show's ids and its season and episode point at different Kitsu anime.",
                [Candidate(k, attempt.episode, "; ".join(direct[k])) for k in sorted(strangers)]
                + [Candidate(by_series.kitsu_id, by_series.episode, by_series.source)],
            )
    if by_series is not None:
        return by_series
    if _series(attempt) is not None and not direct:
        return _by_kitsu_series(attempt)
    return attempt.unmatched("None of these ids leads to a Kitsu anime.")


def resolve(
    ids: MediaIds,
    *,
    season: int | None = None,
    episode: int | None = None,
    title: str | None = None,
    user_id: int | None = None,
) -> Resolution:
    """Which Kitsu anime (and episode within it) the media server's item is.

    `ids` are the show's (a series, or one anime); `season` and `episode` the server's
    numbers (season None with an episode: absolute numbering; 0: specials). When a step
    needs Kitsu and Kitsu cannot answer now (down, rate limited), its retryable KitsuError
    propagates: a later attempt may match what this one could not.
    """
    if (season is not None and season < 0) or (episode is not None and episode < 1):
        return Unmatched(f"Season {season}, episode {episode} is not an episode.")
    keys = ids.known()
    if user_id is not None:
        chosen = _user_choice(user_id, keys, title, season, episode)
        if chosen is not None:
            return chosen
    attempt = _Attempt(ids, season, episode, _Known.read(keys.items()))
    if keys:
        return _by_ids(attempt)
    if title:
        return _by_title(attempt, title)
    return Unmatched("No id and no title were given for this item.")


def _by_kitsu_series(attempt: _Attempt) -> Resolution:
    """No dataset knows the series: Kitsu's own TheTVDB mapping, when it names exactly one
    anime and the episode is in the show's first season."""
    if attempt.ids.tvdb is None:
        return attempt.unmatched(
            "No dataset knows this TMDB series; choose the Kitsu anime yourself."
        )
    found, source = _kitsu_mapped(attempt.known, "tvdb", str(attempt.ids.tvdb))
    attempt.tried.append(source + _named(found))
    if len(found) != 1 or attempt.season not in (1, None):
        return attempt.unmatched(
            "Kitsu maps this TheTVDB series to "
            + (f"{len(found)} anime" if found else "no anime")
            + (
                f", and season {attempt.season} cannot be placed"
                if attempt.season not in (1, None)
                else ""
            )
            + "; choose the Kitsu anime yourself.",
            [Candidate(k, attempt.episode, source) for k in found],
        )
    attempt_direct = {found[0]: [source]}
    answer = _reconcile_direct(attempt, attempt_direct)
    return answer or attempt.unmatched(attempt.tried[-1])
