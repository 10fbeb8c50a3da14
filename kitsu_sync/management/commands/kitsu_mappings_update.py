"""`manage.py kitsu_mappings_update [--from-file PATH ...]`: download (or read) the community
mapping datasets and load them, with a progress bar on a terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from kitsu_sync.datasets import DatasetError
from kitsu_sync.models import MappingDataset
from kitsu_sync.services.mapping_data import LoadResult, update_datasets


class Command(BaseCommand):
    help = (
        "Download the Anime-Lists and Fribb mapping datasets (MAPPING_ANIME_LISTS_URL, "
        "MAPPING_FRIBB_URL) and load them; --from-file loads local copies instead (each file's "
        "dataset is recognised by its content). A failed download or parse keeps the data "
        "loaded before."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from-file",
            action="append",
            default=[],
            type=Path,
            metavar="PATH",
            help="An anime-list-master.xml or anime-list-full.json to load (repeatable).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        paths: list[Path] = options["from_file"]
        for path in paths:
            if not path.is_file():
                raise CommandError(f"{path} is not a file.")
        bars: dict[str, tqdm] = {}

        def progress(source: str, done: int) -> None:
            bar = bars.get(source)
            if bar is None:
                bar = bars[source] = tqdm(
                    desc=source,
                    unit=" records",
                    file=sys.stderr,
                    disable=not self.stderr.isatty(),
                    leave=False,
                )
            bar.update(done - bar.n)

        try:
            results = update_datasets(paths=paths, progress=progress)
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for bar in bars.values():
                bar.close()
        rows = {row.source: row for row in MappingDataset.objects.all()}
        failed = [self._report(result, rows[result.source]) for result in results]
        problems = [problem for problem in failed if problem]
        if problems:
            raise CommandError(" ".join(problems))

    def _report(self, result: LoadResult, row: MappingDataset) -> str:
        """Write what loading one dataset did; the failure to report ("" when none)."""
        dated = f", published {row.published_at:%Y-%m-%d}" if row.published_at else ""
        if not result.ok:
            kept = f"; kept the {row.records} records loaded before" if row.records else ""
            return f"{result.source}: {result.error}{kept}"
        if result.unchanged:
            self.stdout.write(f"{result.source}: unchanged, {row.records} records{dated}")
        else:
            self.stdout.write(f"{result.source}: loaded {result.records} records{dated}")
        return ""
