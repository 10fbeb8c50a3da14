"""Webhook receivers: each media server's own payload, so that a user only pastes a URL.

Jellyfin's Webhook plugin posts JSON (as text/plain unless told otherwise), Plex posts
multipart/form-data with the JSON in its `payload` part, Emby posts its JSON either whole or
in the `data` part of a multipart body. Events that are not a finished watch are
acknowledged (200) with the reason, and ignored.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router

from kitsu_sync.api.auth import WEBHOOK_AUTH, key_of
from kitsu_sync.api.problems import Problem
from kitsu_sync.api.schemas import ScrobbleOut, with_problems
from kitsu_sync.api.scrobbling import scrobbled_out
from kitsu_sync.services.scrobble import scrobble_webhook
from kitsu_sync.webhooks import PARSERS, WebhookError

router = Router(tags=["webhooks"], auth=WEBHOOK_AUTH)

_FORM_PART = {"plex": "payload", "emby": "data"}
NAMES = {"jellyfin": "a Jellyfin", "plex": "a Plex", "emby": "an Emby"}


def _body(request: HttpRequest, source: str) -> Any:
    """The JSON the server sent: a multipart form's part, else the whole body."""
    part = _FORM_PART.get(source)
    if part and request.content_type in (
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ):
        value = request.POST.get(part)
        if value is None:
            raise WebhookError(f"The form has no `{part}` part, where {source.title()} puts it.")
        return value
    return request.body


def _receive(request: HttpRequest, source: str) -> dict[str, Any]:
    try:
        playback = PARSERS[source](
            _body(request, source), threshold=settings.KITSU_SCROBBLE_THRESHOLD
        )
    except WebhookError as exc:
        raise Problem(
            400,
            f"This is not {NAMES[source]} webhook",
            f"{exc.message} Check the webhook's settings in {source.title()} (docs/scrobbling.md).",
        ) from exc
    return scrobbled_out(scrobble_webhook(key=key_of(request), playback=playback))


DESCRIPTION = (
    "Point {server}'s webhook here (docs/scrobbling.md). A finished episode (played past "
    "KITSU_SCROBBLE_THRESHOLD percent, or marked played) is recorded; anything else is "
    "acknowledged with its reason and ignored."
)


@router.post(
    "/jellyfin",
    response=with_problems({200: ScrobbleOut}, 400),
    description=DESCRIPTION.format(server="Jellyfin"),
)
def jellyfin(request: HttpRequest) -> dict[str, Any]:
    return _receive(request, "jellyfin")


@router.post(
    "/plex",
    response=with_problems({200: ScrobbleOut}, 400),
    description=DESCRIPTION.format(server="Plex"),
)
def plex(request: HttpRequest) -> dict[str, Any]:
    return _receive(request, "plex")


@router.post(
    "/emby",
    response=with_problems({200: ScrobbleOut}, 400),
    description=DESCRIPTION.format(server="Emby"),
)
def emby(request: HttpRequest) -> dict[str, Any]:
    return _receive(request, "emby")
