"""Start-up checks: a missing or malformed Kitsu setting fails loudly before the first request."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from kitsu_sync.encryption import parse_keys


@register()
def check_kitsu_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    try:
        parse_keys(settings.KITSU_TOKEN_KEY)
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="kitsu_sync.E001"))
    if settings.KITSU_AUTH_FLOW == "authorization_code" and not settings.KITSU_CLIENT_ID:
        errors.append(
            Error(
                "KITSU_AUTH_FLOW=authorization_code needs KITSU_CLIENT_ID (and usually "
                "KITSU_CLIENT_SECRET) of a client registered with your Kitsu server.",
                hint="kitsu.app registers no clients: use KITSU_AUTH_FLOW=password there.",
                id="kitsu_sync.E002",
            )
        )
    for name in ("KITSU_API_URL", "KITSU_OAUTH_URL"):
        value = getattr(settings, name)
        if not value.startswith(("https://", "http://")):
            errors.append(Error(f"{name}={value!r} must be an http(s) URL.", id="kitsu_sync.E003"))
    return errors


@register(deploy=True)
def check_kitsu_uses_https(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """`check --deploy`: passwords and tokens go to these URLs."""
    return [
        Warning(
            f"{name} is plain HTTP: Kitsu passwords and tokens would cross the network "
            "unencrypted.",
            hint="Use https (https://kitsu.app/api/edge and https://kitsu.app/api/oauth).",
            id="kitsu_sync.W001",
        )
        for name in ("KITSU_API_URL", "KITSU_OAUTH_URL")
        if getattr(settings, name).startswith("http://")
    ]
