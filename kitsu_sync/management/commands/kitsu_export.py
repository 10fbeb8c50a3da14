"""`manage.py kitsu_export USERNAME [--format json|csv]`: a backup of a user's Revenge library,
one record per entry with its anime's Kitsu id, title and external ids, on stdout."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from kitsu_sync.models import LibraryEntry
from kitsu_sync.records import json_value
from kitsu_sync.services.backup import BACKUP_FIELDS, library_backup


class Command(BaseCommand):
    help = (
        "Write a backup of a user's library: one record per entry, with the anime's Kitsu id, "
        "title and external ids (MyAnimeList, AniList, AniDB, TheTVDB)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument("--format", choices=("json", "csv"), default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"Unknown user: {options['username']}.")
        total = LibraryEntry.objects.filter(user=user).count()
        records = tqdm(
            library_backup(user_id=user.pk),
            total=total,
            unit=" entries",
            file=sys.stderr,
            disable=not self.stderr.isatty(),
            leave=False,
        )
        if options["format"] == "csv":
            writer = csv.DictWriter(self.stdout, fieldnames=BACKUP_FIELDS, lineterminator="\n")
            writer.writeheader()
            for record in records:
                writer.writerow({name: json_value(value) for name, value in record.items()})
            return
        rows = [{name: json_value(value) for name, value in record.items()} for record in records]
        self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
