from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from kitsu_sync.management.metadata_command import MetadataCommand, page_size
from kitsu_sync.services import metadata


class Command(MetadataCommand):
    help = "Search Kitsu's anime by title."

    def add_query_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", help="Title text to search for.")
        parser.add_argument("--limit", type=page_size, default=20)

    def fetch(self, **options: Any) -> list[dict[str, Any]]:
        return metadata.search_anime(query=options["query"], limit=options["limit"])
