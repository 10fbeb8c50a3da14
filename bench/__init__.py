"""Benchmarks of the Kitsu sync against the sandbox; see bench/README.md.

Importing this package loads Django with the benchmarks' environment (bench/bench.env, unless
ENV_FILE names another file; real environment variables win), so that every benchmark module
can import models at its top. Where Django is already set up (the smoke tests), it is left as is.
"""

from __future__ import annotations

import os
from pathlib import Path

import django
from django.apps import apps

os.environ.setdefault("ENV_FILE", str(Path(__file__).resolve().parent / "bench.env"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge_site.settings")
if not apps.ready:
    django.setup()
