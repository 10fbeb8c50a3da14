"""The media servers Revenge may ask for a show's ids: a user's own (admin or their settings),
else the operator's (a server with no user). Only item lookups, never anything else."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Q

from kitsu_sync.media_servers import MediaIds, MediaServerClient, MediaServerError
from kitsu_sync.models import MediaServer


class NoMediaServer(MediaServerError):
    """No server of that kind is configured for this user."""


def server_for(*, user_id: int, kind: str) -> MediaServer | None:
    """The user's own server of this kind, else the operator's."""
    servers = MediaServer.objects.filter(Q(user_id=user_id) | Q(user__isnull=True), kind=kind)
    return min(servers, key=lambda server: (server.user_id is None, server.pk), default=None)


def client_for(server: MediaServer) -> MediaServerClient:
    return MediaServerClient(server.kind, server.url, server.api_key, user_id=server.server_user_id)


# A show's ids as its server gave them are kept this long: every episode of a show asks for
# the same ids, and a show's ids rarely change.
SHOW_IDS_KEPT = timedelta(hours=6)
GENERATION = "kitsu-show-ids-generation"


def show_ids(*, user_id: int, kind: str, series_key: str, user_key: str = "") -> MediaIds:
    """The ids of the show whose item key (Jellyfin/Emby SeriesId, Plex grandparentRatingKey)
    the server sent; `user_key` is the server's own user id (Emby needs one to answer). Kept
    in the cache for SHOW_IDS_KEPT. Raises MediaServerError (NoMediaServer when none is
    configured)."""
    generation = cache.get_or_set(GENERATION, 1)
    key = f"kitsu-show-ids:{generation}:{user_id}:{kind}:{series_key}"
    kept = cache.get(key)
    if kept is not None:
        return MediaIds(**kept)
    ids = _ask_for_show_ids(user_id=user_id, kind=kind, series_key=series_key, user_key=user_key)
    cache.set(key, asdict(ids), timeout=SHOW_IDS_KEPT.total_seconds())
    return ids


def forget_show_ids() -> None:
    """Ask the servers again from now on (a server was added, changed or removed): the ids
    kept so far belong to an older generation, and expire unread."""
    try:
        cache.incr(GENERATION)
    except ValueError:  # nothing kept yet
        cache.set(GENERATION, 2, timeout=None)


def _ask_for_show_ids(*, user_id: int, kind: str, series_key: str, user_key: str) -> MediaIds:
    server = server_for(user_id=user_id, kind=kind)
    if server is None:
        raise NoMediaServer(
            f"No {kind.title()} server is set up for this user, so Revenge cannot ask it for the "
            "show's ids: add one on the dashboard (address and API key)."
        )
    client = client_for(server)
    if user_key and not client.user_id:
        client.user_id = user_key
    return client.item(series_key).ids
