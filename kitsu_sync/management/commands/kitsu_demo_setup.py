"""Prepare the one-command demo: a Revenge demo user, and the logins to try."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "revenge-demo"  # noqa: S105 - a documented demo login for the local sandbox only


class Command(BaseCommand):
    help = "Create the demo Revenge user (demo / revenge-demo) and print how to use the demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--web-port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8001)

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEMO_USERNAME,
            defaults={"email": "demo@revenge.local", "is_staff": True, "is_superuser": True},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        web = f"http://127.0.0.1:{options['web_port']}/"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Revenge is starting. Open {web}",
                    f"  Revenge login:        {DEMO_USERNAME} / {DEMO_PASSWORD}  (also /admin/)",
                    "  Sandbox Kitsu login:  demo@example.test (or profile name 'demo') / "
                    "demo-password",
                    f"  Sandbox Kitsu API:    http://127.0.0.1:{options['sandbox_port']}/api/edge",
                    "Stop everything with Ctrl-C.",
                    "",
                ]
            )
        )
