"""`manage.py kitsu_api_key USERNAME [--name NAME] [--server-user NAME ...]`: a new API key for
a user, printed once on stdout (only its hash is kept)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kitsu_sync.services.api_keys import ApiKeyError, create_key


class Command(BaseCommand):
    help = (
        "Create an API key for a user and print it (it cannot be shown again). It works for "
        "the JSON API and the media-server webhooks; docs/api.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument("--name", default="Command line", help="What the key is for.")
        parser.add_argument(
            "--server-user",
            action="append",
            default=[],
            metavar="NAME",
            help="A media-server user name the key's webhooks may act for (repeatable; "
            "none: any user of the server).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"Unknown user: {options['username']}.")
        try:
            _, key = create_key(
                user=user, name=options["name"], server_users=options["server_user"]
            )
        except ApiKeyError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(key)
