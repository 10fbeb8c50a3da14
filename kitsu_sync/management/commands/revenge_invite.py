"""`manage.py revenge_invite [--days 7] [--email ADDRESS] [--base-url URL]`: an invitation link
that opens sign-up for one account while ACCOUNT_ALLOW_SIGNUP is off (docs/accounts.md).

It lives in this app because the project package (revenge_site) is not an installed app.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import URLValidator, validate_email

from revenge_site.accounts import INVITE_MAX_DAYS, invite_path, make_invite, read_invite


class Command(BaseCommand):
    help = (
        "Print an invitation link: whoever opens it may create one account, until it "
        "expires. Send it only to the person you invite."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=7, help=f"Days the link works (1 to {INVITE_MAX_DAYS})."
        )
        parser.add_argument(
            "--email",
            default="",
            metavar="ADDRESS",
            help="Who the link is for: filled in on the sign-up form and kept in the admin's "
            "history of the new account.",
        )
        parser.add_argument(
            "--base-url",
            default="",
            metavar="URL",
            help="The site's address, such as https://revenge.example.org (default: the "
            "first of CSRF_TRUSTED_ORIGINS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days, email = options["days"], options["email"].strip()
        if not 1 <= days <= INVITE_MAX_DAYS:
            raise CommandError(f"--days must be from 1 to {INVITE_MAX_DAYS}.")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise CommandError(f"--email: {email!r} is not an e-mail address.") from None
        base_url = self.base_url(options["base_url"])
        token = make_invite(valid_for=timedelta(days=days), email=email)
        self.stdout.write(f"{base_url}{invite_path(token)}")
        expires = read_invite(token).expires_at
        self.stdout.write(
            f"It opens sign-up for one account until {expires:%Y-%m-%d %H:%M} UTC"
            + (f", for {email}." if email else ".")
        )
        if not base_url:
            self.stderr.write("Put your site's address in front of the path (or pass --base-url).")

    def base_url(self, given: str) -> str:
        origins = getattr(settings, "CSRF_TRUSTED_ORIGINS", [])
        url = (given or (origins[0] if origins else "")).rstrip("/")
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                raise CommandError(f"--base-url: {url!r} is not an http(s) address.") from None
        return url
