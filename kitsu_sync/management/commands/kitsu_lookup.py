"""`manage.py kitsu_lookup SITE ID [--season S] [--episode E] [--movie] [--json]`: which Kitsu
anime (and episode) another site's id is, and how that was found, or why there is none."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from kitsu_sync.management.metadata_command import MetadataCommand
from kitsu_sync.media_servers import MediaIds
from kitsu_sync.services import metadata
from kitsu_sync.services.resolve import Match, resolve

# Site names (and Kitsu's own for the same sites) -> the MediaIds field they fill.
SITES = {
    "kitsu": "kitsu",
    "mal": "mal",
    "myanimelist": "mal",
    "myanimelist/anime": "mal",
    "anilist": "anilist",
    "anilist/anime": "anilist",
    "anidb": "anidb",
    "tvdb": "tvdb",
    "thetvdb": "tvdb",
    "thetvdb/series": "tvdb",
    "tmdb": "tmdb_tv",
    "imdb": "imdb",
}


def _ids(site: str, external_id: str, *, movie: bool) -> MediaIds:
    field = SITES[site]
    if field == "imdb":
        if not external_id.startswith("tt") or not external_id[2:].isdigit():
            raise CommandError(f"IMDb ids look like tt0213338; {external_id!r} is not one.")
        return MediaIds(imdb=external_id)
    if not external_id.isdigit() or int(external_id) < 1:
        raise CommandError(f"{site} ids are numbers; {external_id!r} is not.")
    if field == "tmdb_tv" and movie:
        field = "tmdb_movie"
    return MediaIds(**{field: int(external_id)})


class Command(MetadataCommand):
    help = (
        "Find the Kitsu anime (and episode) for another site's id and say how it was found: "
        "`kitsu_lookup mal 1`, `kitsu_lookup tvdb 267440 --season 3 --episode 13`, "
        "`kitsu_lookup anidb 23 --episode 5`, `kitsu_lookup tmdb 30991`, `kitsu_lookup imdb "
        "tt0213338`. Kitsu's other mapping sites (animenewsnetwork, trakt, ...) ask Kitsu."
    )
    not_found_message = "Kitsu has no anime mapped to that id."

    def add_query_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "site", help="kitsu, mal, anilist, anidb, tvdb, tmdb, imdb, or a Kitsu site"
        )
        parser.add_argument("external_id", help="The id on that site.")
        parser.add_argument("--season", type=int, help="The season number (0: specials).")
        parser.add_argument(
            "--episode", type=int, help="The episode number (without --season: absolute)."
        )
        parser.add_argument("--movie", action="store_true", help="A TMDB id is a movie's.")

    def fetch(self, **options: Any) -> dict[str, Any] | None:
        site = options["site"].strip().lower()
        external_id = options["external_id"].strip()
        if site not in SITES:
            # Another of Kitsu's mapping sites: Kitsu's own /mappings answer.
            return metadata.lookup_anime(site=site, external_id=external_id)
        found = resolve(
            _ids(site, external_id, movie=options["movie"]),
            season=options["season"],
            episode=options["episode"],
        )
        if not isinstance(found, Match):
            tried = "; ".join(found.tried)
            candidates = ", ".join(
                f"Kitsu {c.kitsu_id}" if c.kitsu_id else c.source for c in found.candidates
            )
            raise CommandError(
                f"{self.not_found_message[:-1]}: {found.reason}"
                + (f" Candidates: {candidates}." if candidates else "")
                + (f" Tried: {tried}." if tried else "")
            )
        anime = metadata.anime_details(kitsu_id=found.kitsu_id)
        return {
            **anime,
            "episode": found.episode,
            "found_by": list(found.how),
            "confidence": str(found.confidence),
        }

    def write_details(self, anime: dict[str, Any]) -> None:
        if "found_by" in anime:
            episode = anime["episode"]
            self.stdout.write(
                f"match       Kitsu {anime['kitsu_id']}"
                + (f", episode {episode}" if episode is not None else "")
                + f" ({anime['confidence']})"
            )
            for step in anime["found_by"]:
                self.stdout.write(f"found by    {step}")
        super().write_details(anime)
