from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from kitsu_sync.management.metadata_command import MetadataCommand
from kitsu_sync.services import metadata


class Command(MetadataCommand):
    help = (
        "Find the Kitsu anime for another site's id, e.g. `kitsu_lookup myanimelist/anime 1` "
        "(aliases: mal, anilist, anidb, tvdb)."
    )
    not_found_message = "Kitsu has no anime mapped to that id."

    def add_query_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("site", help="myanimelist/anime, anilist/anime, anidb, thetvdb/series…")
        parser.add_argument("external_id", help="The id on that site.")

    def fetch(self, **options: Any) -> dict[str, Any] | None:
        return metadata.lookup_anime(site=options["site"], external_id=options["external_id"])
