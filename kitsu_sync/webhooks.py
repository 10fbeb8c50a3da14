"""What a media server's webhook says happened: Jellyfin (the Webhook plugin's Generic
destination), Plex and Emby payloads read into one `Playback`. Pure: no Django, no network.

Which events count as watched (docs/scrobbling.md): playback stopped at or past the threshold
(KITSU_SCROBBLE_THRESHOLD percent, 85 by default) or reported as played to completion, and an
item marked played (Jellyfin `UserDataSaved` with `Played`, Emby `item.markplayed`, Plex
`media.scrobble`, which Plex sends past 90%). Everything else is acknowledged and ignored, with
the reason. An episode's provider ids are the episode's own, never taken for the show's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kitsu_sync.media_servers import (
    MediaIds,
    PlexGuid,
    parse_plex_guid,
    plex_guid_ids,
    provider_ids,
)

SOURCES = ("jellyfin", "plex", "emby")
WATCHABLE = ("episode", "movie")


class WebhookError(ValueError):
    """The body is not the server's webhook payload; `message` says what was wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Playback:
    """One webhook, read."""

    source: str  # jellyfin, plex, emby
    event: str  # the server's own name for it
    counts: bool  # a watched episode (or film) to record
    why: str  # why it counts, or why not, in words
    kind: str = ""  # episode, movie, ... (lower case)
    user_name: str = ""  # the server's user
    user_key: str = ""  # the server's id of that user
    show_ids: MediaIds = field(
        default_factory=MediaIds
    )  # the show's ids, when the payload has them
    series_key: str | None = None  # the server's id of the show, to ask it for the show's ids
    item_ids: MediaIds = field(default_factory=MediaIds)  # the item's own ids (a film's are its)
    season: int | None = None
    episode: int | None = None
    absolute: bool = False  # the episode number counts across seasons
    show_title: str = ""
    title: str = ""

    def described(self) -> dict[str, Any]:
        """What the server sent, for a person deciding what the item is."""
        return {
            "source": self.source,
            "event": self.event,
            "kind": self.kind,
            "show": self.show_title,
            "title": self.title,
            "season": self.season,
            "episode": self.episode,
            "show_ids": self.show_ids.known(),
            "item_ids": self.item_ids.known(),
            "server_user": self.user_name,
        }


def _text(value: Any) -> str:
    return str(value).strip() if isinstance(value, str | int | float) else ""


def _number(value: Any) -> int | None:
    """A whole number from JSON or from a template's text ("3", "03"); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    text = _text(value)
    return int(text) if text.isdigit() else None


# No season or episode is numbered this high: a larger number is a broken payload.
INDEX_MAX = 100_000


def _index(value: Any) -> int | None:
    """A season or episode number, or None."""
    number = _number(value)
    return number if number is not None and number <= INDEX_MAX else None


def _flag(value: Any) -> bool:
    """A boolean from JSON (true) or a Handlebars template ("True")."""
    return value is True or _text(value).lower() == "true"


def _share(position: Any, length: Any) -> float | None:
    """How much of the item was played (0..1), from two tick or millisecond counts."""
    done, total = _number(position), _number(length)
    if done is None or not total:
        return None
    return done / total


def _stopped(share: float | None, completed: bool, threshold: float) -> tuple[bool, str]:
    if completed:
        return True, "played to completion"
    if share is not None and share * 100 >= threshold:
        return True, f"stopped at {share:.0%} (at least {threshold:g}% counts)"
    where = "an unknown point" if share is None else f"{share:.0%}"
    return False, f"stopped at {where}, before {threshold:g}%: not counted as watched"


def _object(body: Any, what: str, empty: str = "") -> dict[str, Any]:
    if isinstance(body, bytes | str):
        if not body.strip():
            raise WebhookError(f"The {what} body is empty.{empty}")
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise WebhookError(f"The {what} body is not JSON ({exc}).") from exc
    if not isinstance(body, dict):
        raise WebhookError(f"The {what} body is not a JSON object.")
    return body


def _watchable(kind: str, source: str, event: str) -> Playback | None:
    if kind in WATCHABLE:
        return None
    named = kind or "an item of no type"
    return Playback(source, event, False, f"{named} is not an episode or a film: ignored", kind)


# --- Jellyfin ---------------------------------------------------------------------------------


def _jellyfin_counts(body: Mapping[str, Any], event: str, threshold: float) -> tuple[bool, str]:
    if event == "PlaybackStop":
        share = _share(body.get("PlaybackPositionTicks"), body.get("RunTimeTicks"))
        return _stopped(share, _flag(body.get("PlayedToCompletion")), threshold)
    if event == "UserDataSaved":
        reason = _text(body.get("SaveReason"))
        if _flag(body.get("Played")) and reason in ("TogglePlayed", "PlaybackFinished"):
            return True, f"marked played ({reason})"
        return False, f"user data saved ({reason or 'no reason'}), not marked played: ignored"
    return False, f"{event or 'an event with no NotificationType'} is not a finished watch: ignored"


# The plugin posts "" when the Generic destination has no template and "Send All Properties"
# is off (jellyfin-plugin-webhook#319).
_JELLYFIN_EMPTY = (
    " Give the Webhook plugin's Generic destination the template in"
    " docs/jellyfin-webhook-template.hbs, or turn on Send All Properties."
)


def _unescaped(value: Any) -> str:
    """A name as the server has it: the plugin writes `"` as `\\"` into Name and SeriesName
    (DataObjectHelpers.Escape, for its templates), which Send All Properties keeps."""
    return _text(value).replace('\\"', '"')


def parse_jellyfin(body: Any, *, threshold: float) -> Playback:
    """The Webhook plugin's Generic destination: the flat keys of "Send All Properties", or
    the template in docs/jellyfin-webhook-template.hbs, which sends the same keys as text."""
    data = _object(body, "Jellyfin", _JELLYFIN_EMPTY)
    event = _text(data.get("NotificationType"))
    kind = _text(data.get("ItemType")).lower()
    ignored = _watchable(kind, "jellyfin", event)
    if ignored is not None and event in ("PlaybackStop", "UserDataSaved"):
        return ignored
    counts, why = _jellyfin_counts(data, event, threshold)
    providers = {
        key[len("Provider_") :]: value for key, value in data.items() if key.startswith("Provider_")
    }
    series_key = _text(data.get("SeriesId")).replace("-", "").lower() or None
    return Playback(
        source="jellyfin",
        event=event,
        counts=counts and ignored is None,
        why=why if ignored is None else ignored.why,
        kind=kind,
        user_name=_text(data.get("NotificationUsername") or data.get("Username")),
        user_key=_text(data.get("UserId")).replace("-", "").lower(),
        series_key=series_key if kind == "episode" else None,
        item_ids=provider_ids(providers, movie=kind == "movie"),
        season=_index(data.get("SeasonNumber")),
        episode=_index(data.get("EpisodeNumber")),
        show_title=_unescaped(data.get("SeriesName")),
        title=_unescaped(data.get("Name")),
    )


# --- Plex -------------------------------------------------------------------------------------


def _plex_counts(event: str, metadata: Mapping[str, Any], threshold: float) -> tuple[bool, str]:
    if event == "media.scrobble":
        return True, "Plex scrobbled it (played past 90%)"
    if event == "media.stop":
        return _stopped(
            _share(metadata.get("viewOffset"), metadata.get("duration")), False, threshold
        )
    return False, f"{event or 'an event with no name'} is not a finished watch: ignored"


def _legacy_show(metadata: Mapping[str, Any]) -> PlexGuid | None:
    """The show's ids in a legacy agent's guid (HAMA, TheTVDB): the item's, else its show's."""
    for key in ("guid", "grandparentGuid"):
        parsed = parse_plex_guid(_text(metadata.get(key)))
        if parsed is not None:
            return parsed
    return None


def parse_plex(payload: Any, *, threshold: float) -> Playback:
    """The JSON of the `payload` part of Plex's multipart webhook."""
    data = _object(payload, "Plex payload")
    event = _text(data.get("event"))
    metadata = data.get("Metadata") if isinstance(data.get("Metadata"), dict) else {}
    kind = _text(metadata.get("type")).lower()
    account = data.get("Account") if isinstance(data.get("Account"), dict) else {}
    ignored = _watchable(kind, "plex", event)
    counts, why = _plex_counts(event, metadata, threshold)
    if ignored is not None and counts:
        return Playback("plex", event, False, ignored.why, kind, _text(account.get("title")))
    legacy = _legacy_show(metadata) if kind == "episode" else None
    guids = metadata.get("Guid") if isinstance(metadata.get("Guid"), list) else []
    if kind == "movie" and not guids and _text(metadata.get("guid")):
        # A film matched by a legacy agent (IMDb, TheMovieDB, HAMA): its ids are in its guid.
        guids = [{"id": _text(metadata.get("guid"))}]
    season = _index(metadata.get("parentIndex"))
    episode = _index(metadata.get("index"))
    if legacy is not None and legacy.episode is not None:
        season, episode = legacy.season, legacy.episode
    return Playback(
        source="plex",
        event=event,
        counts=counts,
        why=why,
        kind=kind,
        user_name=_text(account.get("title")),
        user_key=_text(account.get("id")),
        show_ids=legacy.ids if legacy is not None else MediaIds(),
        series_key=(_text(metadata.get("grandparentRatingKey")) or None)
        if kind == "episode"
        else None,
        item_ids=plex_guid_ids(guids, movie=kind == "movie"),
        season=season,
        episode=episode,
        absolute=legacy is not None and legacy.absolute,
        show_title=_text(metadata.get("grandparentTitle")),
        title=_text(metadata.get("title")),
    )


# --- Emby ---------------------------------------------------------------------------------------


def _emby_counts(event: str, data: Mapping[str, Any], threshold: float) -> tuple[bool, str]:
    if event == "item.markplayed":
        return True, "marked played"
    if event == "playback.stop":
        item = data.get("Item") if isinstance(data.get("Item"), dict) else {}
        info = data.get("PlaybackInfo") if isinstance(data.get("PlaybackInfo"), dict) else {}
        share = _share(info.get("PositionTicks"), item.get("RunTimeTicks"))
        return _stopped(share, _flag(info.get("PlayedToCompletion")), threshold)
    return False, f"{event or 'an event with no name'} is not a finished watch: ignored"


def parse_emby(body: Any, *, threshold: float) -> Playback:
    """Emby's webhook JSON (the `data` part of its multipart body, or the whole body)."""
    data = _object(body, "Emby")
    event = _text(data.get("Event"))
    item = data.get("Item") if isinstance(data.get("Item"), dict) else {}
    user = data.get("User") if isinstance(data.get("User"), dict) else {}
    kind = _text(item.get("Type")).lower()
    counts, why = _emby_counts(event, data, threshold)
    ignored = _watchable(kind, "emby", event)
    if ignored is not None and counts:
        return Playback("emby", event, False, ignored.why, kind, _text(user.get("Name")))
    ids = item.get("ProviderIds") if isinstance(item.get("ProviderIds"), dict) else {}
    return Playback(
        source="emby",
        event=event,
        counts=counts,
        why=why,
        kind=kind,
        user_name=_text(user.get("Name")),
        user_key=_text(user.get("Id")),
        series_key=(_text(item.get("SeriesId")) or None) if kind == "episode" else None,
        item_ids=provider_ids(ids, movie=kind == "movie"),
        season=_index(item.get("ParentIndexNumber")),
        episode=_index(item.get("IndexNumber")),
        show_title=_text(item.get("SeriesName")),
        title=_text(item.get("Name")),
    )


PARSERS = {"jellyfin": parse_jellyfin, "plex": parse_plex, "emby": parse_emby}
