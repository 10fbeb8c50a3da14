from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from kitsu_sync.management.metadata_command import MetadataCommand
from kitsu_sync.services import metadata


class Command(MetadataCommand):
    help = "List a season's anime, e.g. `kitsu_season spring 2024`."

    def add_query_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("season", choices=metadata.SEASONS, type=str.lower)
        parser.add_argument("year", type=int)
        parser.add_argument("--limit", type=int, default=None, help="Stop after this many.")

    def fetch(self, **options: Any) -> list[dict[str, Any]]:
        return metadata.season_anime(
            season=options["season"], year=options["year"], limit=options["limit"]
        )
