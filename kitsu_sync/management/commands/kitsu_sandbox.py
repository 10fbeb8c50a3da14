"""`manage.py kitsu_sandbox`: run the local Kitsu stand-in until Ctrl-C."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kitsu_sync.sandbox.cli import add_arguments, config_from, describe
from kitsu_sync.sandbox.server import serve


class Command(BaseCommand):
    help = (
        "Run the Kitsu sandbox: a local Kitsu with seeded users and libraries, over real HTTP. "
        "It prints its URLs and the demo login, then serves until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = config_from(options)
        except ValueError as error:
            raise CommandError(str(error)) from error

        def announce(sandbox: Any) -> None:
            describe(sandbox, self.stdout.write)
            self.stdout.flush()

        try:
            serve(config, options["host"], options["port"], ready=announce)
        except OSError as error:
            raise CommandError(
                f"Could not listen on {options['host']}:{options['port']}: {error.strerror}. "
                "Pick another port with --port."
            ) from error
