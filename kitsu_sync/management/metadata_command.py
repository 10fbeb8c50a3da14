"""Shared shape of the metadata commands: human output by default, `--json` for scripts, and
one clear line on stderr with a non-zero exit when anything fails."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kitsu_sync.kitsu_api import KitsuConnectionError, KitsuError, KitsuNotFound
from kitsu_sync.records import json_value

LIST_COLUMNS = (
    ("kitsu_id", "ID"),
    ("title", "Title"),
    ("subtype", "Type"),
    ("episode_count", "Eps"),
    ("airing_status", "Status"),
    ("kitsu_score", "Score"),
)
DETAIL_FIELDS = (
    "kitsu_id",
    "title",
    "title_en",
    "title_native",
    "slug",
    "subtype",
    "airing_status",
    "episode_count",
    "episode_duration",
    "start_date",
    "end_date",
    "kitsu_score",
    "kitsu_rank",
    "kitsu_popularity",
    "mal_id",
    "anilist_id",
    "anidb_id",
    "tvdb_id",
    "poster_url",
    "backdrop_url",
    "overview",
)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def page_size(value: str) -> int:
    """1..20: Kitsu's largest page for anime is 20."""
    if not value.isdigit() or not 1 <= int(value) <= 20:
        raise ValueError(value)
    return int(value)


page_size.__name__ = "limit (1..20)"  # argparse names the type in its error message


class MetadataCommand(BaseCommand):
    """Subclasses add their arguments and implement `fetch`."""

    not_found_message = "Kitsu has no such anime."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        # argparse prints the whole usage before the error; scripts want the one line.
        def one_line_error(message: str) -> None:
            if not parser.called_from_command_line:
                raise CommandError(f"Error: {message}")
            parser.exit(2, f"{parser.prog}: error: {message}\n")

        parser.error = one_line_error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        self.add_query_arguments(parser)
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document with Revenge field names."
        )

    def add_query_arguments(self, parser: CommandParser) -> None:
        raise NotImplementedError

    def fetch(self, **options: Any) -> dict[str, Any] | list[dict[str, Any]] | None:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        # Scripts read stdout and expect one line on stderr when it fails: retries and
        # request logs show only with -v 2 or more.
        if options["verbosity"] < 2:
            logging.disable(logging.INFO)
        try:
            result = self.fetch(**options)
        except KitsuConnectionError as exc:
            raise CommandError(
                f"Kitsu could not be reached at {settings.KITSU_API_URL} ({exc.message}). "
                "Check KITSU_API_URL and the network."
            ) from exc
        except KitsuNotFound as exc:
            raise CommandError(self.not_found_message) from exc
        except KitsuError as exc:
            raise CommandError(exc.message) from exc
        finally:
            logging.disable(logging.NOTSET)
        if result is None:
            raise CommandError(self.not_found_message)
        if options["json"]:
            self.stdout.write(json.dumps(result, default=json_value, ensure_ascii=False))
        elif isinstance(result, list):
            self.write_table(result)
        else:
            self.write_details(result)

    def write_table(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            self.stdout.write("No anime found.")
            return
        table = [[header for _, header in LIST_COLUMNS]]
        table += [[_cell(row.get(key)) for key, _ in LIST_COLUMNS] for row in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(LIST_COLUMNS))]
        for line in table:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip()
            )

    def write_details(self, anime: dict[str, Any]) -> None:
        width = max(len(name) for name in DETAIL_FIELDS)
        for name in DETAIL_FIELDS:
            if name in anime:
                self.stdout.write(f"{name.ljust(width)}  {_cell(anime[name])}")
