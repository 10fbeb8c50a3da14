"""Re-encrypt every stored Kitsu token (and media server API key, and users' Apprise URLs)
with the first key of KITSU_TOKEN_KEY.

Rotation: put the new key first (`KITSU_TOKEN_KEY=new,old`), run this, then drop the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Model

from kitsu_sync.encryption import TokenDecryptionError
from kitsu_sync.models import KitsuToken, MediaServer, NotificationSettings
from kitsu_sync.services.tokens import RELINK_UNREADABLE, mark_needs_relink


class Command(BaseCommand):
    help = (
        "Re-encrypt all stored Kitsu tokens, media server API keys and Apprise URLs with the "
        "first key in KITSU_TOKEN_KEY."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = unreadable = 0
        links = KitsuToken.objects.values_list("pk", "user_id").order_by("pk")
        for pk, user_id in links:
            try:
                # Row by row under a lock, so that a refresh saving new tokens meanwhile waits
                # for this write instead of being overwritten by older tokens.
                with transaction.atomic():
                    link = KitsuToken.objects.select_for_update().get(pk=pk)
                    link.save(update_fields=["access_token", "refresh_token"])
            except KitsuToken.DoesNotExist:
                continue  # unlinked meanwhile
            except TokenDecryptionError:
                mark_needs_relink(user_id=user_id, reason=RELINK_UNREADABLE)
                unreadable += 1
                continue
            rotated += 1
        self.stdout.write(f"Re-encrypted the tokens of {rotated} Kitsu link(s).")
        servers, lost = self._rotate_media_server_keys()
        if servers or lost:
            self.stdout.write(f"Re-encrypted the API keys of {servers} media server(s).")
        urls, lost_urls = self._rotate_apprise_urls()
        if urls or lost_urls:
            self.stdout.write(f"Re-encrypted the Apprise URLs of {urls} user(s).")
        if lost_urls:
            self.stderr.write(
                f"{lost_urls} Apprise URL(s) could not be decrypted with any key in "
                "KITSU_TOKEN_KEY: those users' notices stay on the dashboard until they enter "
                "their URL again."
            )
        if lost:
            raise CommandError(
                f"{lost} media server API key(s) could not be decrypted with any key in "
                "KITSU_TOKEN_KEY: enter them again in the admin."
            )
        if unreadable:
            raise CommandError(
                f"{unreadable} link(s) could not be decrypted with any key in KITSU_TOKEN_KEY; "
                "they are marked for re-link (their users must link Kitsu again)."
            )

    def _rotate_media_server_keys(self) -> tuple[int, int]:
        """(re-encrypted, unreadable) media server API keys."""
        return _re_encrypt(MediaServer, "api_key")

    def _rotate_apprise_urls(self) -> tuple[int, int]:
        """(re-encrypted, unreadable) Apprise URLs of users' notification settings."""
        return _re_encrypt(NotificationSettings, "apprise_url")


def _re_encrypt(model: type[Model], field: str) -> tuple[int, int]:
    """Save `field` of every row again, so the first key encrypts it: (re-encrypted,
    unreadable). Each row is locked while it is rewritten, so no edit meanwhile is lost."""
    rotated = lost = 0
    for pk in model.objects.values_list("pk", flat=True).order_by("pk"):
        try:
            with transaction.atomic():
                model.objects.select_for_update().get(pk=pk).save(update_fields=[field])
        except model.DoesNotExist:
            continue
        except TokenDecryptionError:
            lost += 1
            continue
        rotated += 1
    return rotated, lost
