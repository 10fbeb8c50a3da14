from __future__ import annotations

from django.apps import AppConfig


class KitsuSyncConfig(AppConfig):
    name = "kitsu_sync"
    verbose_name = "Kitsu sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kitsu_sync import checks  # noqa: F401  (registers the system checks)
