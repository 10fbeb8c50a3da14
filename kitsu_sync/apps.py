from __future__ import annotations

from django.apps import AppConfig


class KitsuSyncConfig(AppConfig):
    name = "kitsu_sync"
    verbose_name = "Kitsu sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for their side effects: system checks and allauth signal receivers.
        from kitsu_sync import checks, receivers  # noqa: F401
