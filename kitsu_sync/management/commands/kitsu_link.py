"""Link a Revenge user to Kitsu without the web UI (the password is read from stdin)."""

from __future__ import annotations

import getpass
import logging
import sys
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from kitsu_sync.services.linking import LinkFailed, link_with_password


def read_password(stream: TextIO) -> str:
    """One line from stdin (only its line break removed: spaces may be part of the password);
    a prompt without echo on a terminal."""
    if stream.isatty():
        return getpass.getpass("Kitsu password: ", stream=sys.stderr)
    return stream.readline().removesuffix("\n").removesuffix("\r")


class Command(BaseCommand):
    help = (
        "Link a Revenge user to a Kitsu account with the password grant. The password is read "
        "from stdin (prompted for on a terminal), sent once to Kitsu and never stored."
    )
    # Tests pass their own stdin through call_command.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The Revenge user to link.")
        parser.add_argument(
            "--kitsu-login",
            required=True,
            help="The Kitsu email or profile URL name (not the display name).",
        )

    @method_decorator(sensitive_variables("password"))
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: options["username"]})
        except user_model.DoesNotExist:
            raise CommandError(f"No Revenge user named {options['username']!r}.") from None
        password = read_password(options.get("stdin") or sys.stdin)
        if options["verbosity"] < 2:
            # Retries and request logs would drown the one line scripts read on failure.
            logging.disable(logging.INFO)
        try:
            link = link_with_password(user=user, login=options["kitsu_login"], password=password)
        except LinkFailed as exc:
            raise CommandError(exc.message) from None
        finally:
            logging.disable(logging.NOTSET)
        name = link.kitsu_display_name or link.kitsu_username
        self.stdout.write(
            f"Linked {user.get_username()} to Kitsu account {name} "
            f"(profile {link.kitsu_username or '-'}, id {link.kitsu_user_id}). The first sync is "
            f"queued; `manage.py kitsu_sync {user.get_username()}` runs one now."
        )
