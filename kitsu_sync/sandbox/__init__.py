"""A local stand-in for Kitsu (kitsu.app), served over real HTTP; see docs/kitsu-api.md.

Django-free. Start one with `serve_in_thread(SandboxConfig(...))`, or from a shell with
`python -m kitsu_sync.sandbox` or `python manage.py kitsu_sandbox`.
"""

from __future__ import annotations

from kitsu_sync.sandbox.config import (
    PUBLIC_CLIENT_ID,
    PUBLIC_CLIENT_SECRET,
    FaultRule,
    SandboxConfig,
)
from kitsu_sync.sandbox.seed import SeededCredential, seeded_credentials
from kitsu_sync.sandbox.server import SandboxApp, SandboxServer, create_app, serve, serve_in_thread
from kitsu_sync.sandbox.store import SandboxStore

__all__ = [
    "PUBLIC_CLIENT_ID",
    "PUBLIC_CLIENT_SECRET",
    "FaultRule",
    "SandboxApp",
    "SandboxConfig",
    "SandboxServer",
    "SandboxStore",
    "SeededCredential",
    "create_app",
    "seeded_credentials",
    "serve",
    "serve_in_thread",
]
