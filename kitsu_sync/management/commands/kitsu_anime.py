from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from kitsu_sync.management.metadata_command import MetadataCommand
from kitsu_sync.services import metadata


def kitsu_id(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(value)
    return int(value)


kitsu_id.__name__ = "Kitsu anime id"  # argparse names the type in its error message


class Command(MetadataCommand):
    help = "Show one Kitsu anime with its MyAnimeList, AniList, AniDB and TheTVDB ids."

    def add_query_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kitsu_id", type=kitsu_id, help="Numeric Kitsu anime id, e.g. 1.")

    def fetch(self, **options: Any) -> dict[str, Any]:
        return metadata.anime_details(kitsu_id=options["kitsu_id"])
