"""The Celery application: configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge_site.settings")

app = Celery("revenge_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def create_filesystem_queue(sender: Celery, **kwargs: object) -> None:
    # kombu's filesystem transport (the embedded, Redis-less default) expects its folders to exist.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@worker_process_init.connect
def freeze_startup_objects(**kwargs: object) -> None:
    # Each prefork child, once Django is loaded: full collections then skip start-up objects.
    from kitsu_sync.runtime import freeze_startup_objects as freeze

    freeze()
