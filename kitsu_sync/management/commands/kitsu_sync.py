"""`manage.py kitsu_sync [USERNAME ... | --all] [--full] [--dry-run]`: sync Kitsu libraries in
this process (no worker needed), with a progress bar on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from kitsu_sync.models import KitsuToken, SyncOutcome, SyncRun, SyncTrigger
from kitsu_sync.runtime import startup_objects_frozen
from kitsu_sync.services.sync import preview_sync, run_sync


class Command(BaseCommand):
    help = (
        "Sync users' Kitsu anime libraries now, in this process. Incremental unless --full "
        "(which also removes entries deleted on Kitsu); --dry-run shows what would change on "
        "each side and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="*", metavar="USERNAME")
        parser.add_argument("--all", action="store_true", help="Every user with a Kitsu link.")
        parser.add_argument("--full", action="store_true", help="Read the whole library.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = self._users(options["usernames"], every=options["all"])
        if options["verbosity"] < 2:
            # Retries and request logs would drown the one line scripts read on failure.
            logging.disable(logging.INFO)
        failures: list[str] = []
        try:
            with startup_objects_frozen():
                for user in users:
                    run = self._sync(user, full=options["full"], dry_run=options["dry_run"])
                    self._report(user.get_username(), run, verbosity=options["verbosity"])
                    if run.outcome in (SyncOutcome.FAILED, SyncOutcome.SKIPPED):
                        reason = run.errors[-1]["reason"] if run.errors else run.outcome
                        failures.append(f"{user.get_username()} ({reason})")
        finally:
            logging.disable(logging.NOTSET)
        if failures:
            raise CommandError(f"Sync failed for {'; '.join(failures)}")

    def _users(self, usernames: list[str], *, every: bool) -> list[Any]:
        user_model = get_user_model()
        if every and usernames:
            raise CommandError("Name users or use --all, not both.")
        if every:
            linked = KitsuToken.objects.values("user_id")
            return list(user_model.objects.filter(pk__in=linked).order_by("username"))
        if not usernames:
            raise CommandError("Name one or more users, or use --all.")
        found = {
            user.get_username(): user
            for user in user_model.objects.filter(**{"username__in": usernames})
        }
        unknown = [name for name in usernames if name not in found]
        if unknown:
            raise CommandError(f"Unknown user: {', '.join(unknown)}.")
        return [found[name] for name in usernames]

    def _sync(self, user: Any, *, full: bool, dry_run: bool) -> SyncRun:
        with tqdm(
            desc=user.get_username(),
            unit=" entries",
            file=sys.stderr,
            disable=not self.stderr.isatty(),
            leave=False,
        ) as bar:

            def progress(done: int, total: int | None) -> None:
                if total is not None and bar.total != total:
                    bar.total = total
                bar.update(done - bar.n)

            # A dry run plans every change as a sync would, and applies none.
            sync = preview_sync if dry_run else run_sync
            return sync(user_id=user.pk, trigger=SyncTrigger.COMMAND, full=full, progress=progress)

    def _report(self, username: str, run: SyncRun, *, verbosity: int) -> None:
        prefix = "dry run, " if run.dry_run else ""
        kind = "full" if run.full else "incremental"
        self.stdout.write(
            f"{username}: {run.get_outcome_display().lower()} ({prefix}{kind}, "
            f"{run.get_direction_display().lower()}): fetched {run.fetched}, "
            f"created {run.created}, updated {run.updated}, unchanged {run.unchanged}, "
            f"deleted {run.deleted}, sent to Kitsu {run.pushed}, conflicts {run.conflicts}, "
            f"failed {run.failed}; {run.requests_made} Kitsu requests."
        )
        for change in run.planned_changes:
            where = "Revenge" if change["side"] == "revenge" else "Kitsu"
            details = ", ".join(
                f"{name} {values['from']!r} -> {values['to']!r}"
                for name, values in change["changes"].items()
            )
            title = change["title"] or f"anime {change['anime']}"
            self.stdout.write(
                f"  would {change['action']} on {where}: {title}"
                + (f": {details}" if details else "")
            )
        if verbosity >= 2:
            for conflict in run.conflict_log:
                self.stdout.write(
                    f"  conflict on {conflict['title'] or conflict['anime']}: {conflict['field']}"
                    f" Revenge {conflict['local']!r}, Kitsu {conflict['remote']!r}; kept "
                    f"{conflict['kept']} ({conflict['rule']})"
                )
        if run.outcome == SyncOutcome.PARTIAL:
            for error in run.errors:
                self.stdout.write(f"  problem: {error['reason']}")
