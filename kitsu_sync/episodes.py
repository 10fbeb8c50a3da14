"""Which AniDB anime and episode a media server's season and episode number is.

Pure decisions over Anime-Lists entries (`kitsu_sync.datasets`), for TheTVDB or TMDB TV
numbering (docs/resolve.md). In order of strength, as Anime-Lists documents it:

1. a `mapping-list` pair (`;anidb-tvdb;`) that names the episode;
2. a `mapping-list` range (`start`..`end` with `offset`) that covers it;
3. the entry whose default season is this one, with the largest episode offset below the
   episode (a season split into cours: episode 13 of the season is episode 1 of the second).

Each step answers with every candidate it finds; more than one distinct candidate is an
ambiguity the caller reports, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kitsu_sync.datasets import AnimeListsEntry, EpisodeRule, Season

PROVIDERS = ("tvdb", "tmdb")


@dataclass(frozen=True, slots=True)
class AniDbEpisode:
    anidb_id: int
    number: int  # the episode within that AniDB anime, from 1
    special: bool  # an AniDB special ("S" episode): Kitsu counts those in other entries
    rule: str  # how it was found, in words


def _series_id(entry: AnimeListsEntry, provider: str) -> int | None:
    return entry.tvdb_id if provider == "tvdb" else entry.tmdb_tv_id


def _default(entry: AnimeListsEntry, provider: str) -> tuple[Season, int]:
    if provider == "tvdb":
        return entry.tvdb_season, entry.tvdb_offset
    return entry.tmdb_season, entry.tmdb_offset


def _rule_season(rule: EpisodeRule, provider: str) -> int | None:
    return rule.tvdb_season if provider == "tvdb" else rule.tmdb_season


def _paired(entry: AnimeListsEntry, anidb_episode: int, special: bool) -> bool:
    """An individual pair says where this AniDB episode goes (it beats any offset)."""
    return any(
        source == anidb_episode
        for rule in entry.rules
        if rule.anidb_special == special
        for source, _ in rule.pairs
    )


def _distinct(found: list[AniDbEpisode]) -> list[AniDbEpisode]:
    unique: dict[tuple[int, int, bool], AniDbEpisode] = {}
    for candidate in found:
        unique.setdefault((candidate.anidb_id, candidate.number, candidate.special), candidate)
    return list(unique.values())


def _by_rules(
    entries: Sequence[AnimeListsEntry], provider: str, season: int, episode: int
) -> tuple[list[AniDbEpisode], list[AniDbEpisode]]:
    """(pair candidates, range candidates) for this season and episode."""
    pairs: list[AniDbEpisode] = []
    ranges: list[AniDbEpisode] = []
    where = f"{provider.upper()} season {season} episode {episode}"
    for entry in entries:
        for rule in entry.rules:
            if _rule_season(rule, provider) != season:
                continue
            for source, targets in rule.pairs:
                if episode in targets:
                    pairs.append(
                        AniDbEpisode(
                            entry.anidb_id,
                            source,
                            rule.anidb_special,
                            f"Anime-Lists pair: {where} is AniDB {entry.anidb_id} "
                            f"{'special ' if rule.anidb_special else ''}episode {source}",
                        )
                    )
            if rule.start is None:
                continue
            number = episode - rule.offset
            end = rule.end or rule.start
            if rule.start <= number <= end and not _paired(entry, number, rule.anidb_special):
                ranges.append(
                    AniDbEpisode(
                        entry.anidb_id,
                        number,
                        rule.anidb_special,
                        f"Anime-Lists range {rule.start}-{end} (offset {rule.offset}): {where} "
                        f"is AniDB {entry.anidb_id} episode {number}",
                    )
                )
    return pairs, ranges


def _by_default_season(
    entries: Sequence[AnimeListsEntry], provider: str, season: int, episode: int
) -> list[AniDbEpisode]:
    """The entries whose default season this is, with the largest offset below the episode."""
    found: list[tuple[int, AniDbEpisode]] = []
    for entry in entries:
        default, offset = _default(entry, provider)
        if default.absolute or default.number != season:
            continue
        number = episode - offset
        covered = any(rule.covers(number) for rule in entry.rules if not rule.anidb_special)
        if number < 1 or covered:
            continue
        rule = (
            f"Anime-Lists default: {provider.upper()} season {season} from episode "
            f"{offset + 1} is AniDB {entry.anidb_id}, so episode {episode} is its episode {number}"
        )
        found.append((offset, AniDbEpisode(entry.anidb_id, number, False, rule)))
    if not found:
        return []
    best = max(offset for offset, _ in found)
    return _distinct([candidate for offset, candidate in found if offset == best])


def locate_episode(
    entries: Sequence[AnimeListsEntry], *, provider: str, series_id: int, season: int, episode: int
) -> list[AniDbEpisode]:
    """The AniDB episode(s) that season `season`, episode `episode` of a TheTVDB (or TMDB TV)
    series is, by the strongest rule that names one; [] when none does."""
    if provider not in PROVIDERS:
        raise ValueError(f"Unknown numbering {provider!r}; use one of {PROVIDERS}.")
    series = [entry for entry in entries if _series_id(entry, provider) == series_id]
    pairs, ranges = _by_rules(series, provider, season, episode)
    if pairs:
        return _distinct(pairs)
    if ranges:
        return _distinct(ranges)
    return _by_default_season(series, provider, season, episode)


def locate_absolute_episode(
    entries: Sequence[AnimeListsEntry], *, provider: str, series_id: int, episode: int
) -> list[AniDbEpisode]:
    """Absolute episode numbering (no season): the AniDB anime whose numbering is absolute
    on this series (default season `a`), where AniDB's episode number is the absolute one."""
    return _distinct(
        [
            AniDbEpisode(
                entry.anidb_id,
                episode,
                False,
                f"Anime-Lists: AniDB {entry.anidb_id} numbers {provider.upper()} "
                f"{series_id} absolutely, so episode {episode} is its episode {episode}",
            )
            for entry in entries
            if _series_id(entry, provider) == series_id and _default(entry, provider)[0].absolute
        ]
    )


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One AniDB anime of a show numbered by season, with how many episodes it has."""

    anidb_id: int
    season: int
    offset: int
    episode_count: int | None


def walk_absolute(chain: Sequence[ChainLink], episode: int) -> AniDbEpisode | str:
    """Absolute episode `episode` across a show split into several anime, season by season,
    each anime's episodes following the last. The anime must cover every season from its
    first episode without a gap (their offsets chain exactly); otherwise the reason."""
    ordered = sorted(chain, key=lambda link: (link.season, link.offset))
    before = 0  # episodes of the anime before this one
    expected: dict[int, int] = {}  # season -> the offset its next anime must have
    for link in ordered:
        if link.season < 1:
            continue
        if link.offset != expected.get(link.season, 0):
            return (
                f"AniDB {link.anidb_id} starts at episode {link.offset + 1} of season "
                f"{link.season}, which leaves a gap: absolute numbers cannot be counted across it"
            )
        if link.episode_count is None:
            return f"Kitsu does not know how many episodes AniDB {link.anidb_id}'s anime has"
        if episode <= before + link.episode_count:
            number = episode - before
            return AniDbEpisode(
                link.anidb_id,
                number,
                False,
                f"absolute episode {episode}: {before} episodes come before AniDB "
                f"{link.anidb_id} (season {link.season}), so it is its episode {number}",
            )
        before += link.episode_count
        expected[link.season] = link.offset + link.episode_count
    return f"absolute episode {episode} is beyond the {before} episodes the show's anime have"
