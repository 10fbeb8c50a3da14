"""Media-server webhook payloads, shaped as Jellyfin, Plex and Emby send them.

Each sample below is one definition with a docstring naming where its shape comes from: a
repository and path (and commit where one was pinned), or an issue thread. "Verbatim" samples
are the JSON as published there; "derived" ones are built from a verbatim sample and the
fields the cited source code writes, and say what was changed.

Builders (each starts from a sample constant below, default first, and returns a fresh copy;
keyword overrides merge into nested objects, None removes a key, NULL writes JSON null):
- `jellyfin_data(sample, /, **overrides) -> dict`: the plugin's data dictionary (C# types).
- `jellyfin_all_properties(sample, /, **overrides) -> dict`: the JSON of the Webhook plugin's
  Generic destination with "Send All Properties" on.
- `jellyfin_template(sample, /, **values) -> str`: the body the same destination sends with
  docs/jellyfin-webhook-template.hbs pasted as its template (the file is read, not copied).
- `plex_payload(sample, /, **overrides) -> dict` and `plex_multipart(payload)`.
- `emby_payload(sample, /, **overrides) -> dict` and `emby_multipart(payload)`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "docs" / "jellyfin-webhook-template.hbs"

NULL = object()
"""An override that writes JSON null (None removes the key instead)."""


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = None if value is NULL else copy.deepcopy(value)
    return merged


# --- Jellyfin: the Webhook plugin's data dictionary ---------------------------------------------
#
# The samples hold the plugin's values with their C# types (UUID for Guid, bool, int for
# int/long, datetime for DateTime, str), after the plugin's own Escape() (`"` -> `\"` in Name,
# Overview, Tagline, ItemType, SeriesName, ServerName), so that both ways of sending them can be
# rendered from one definition. Keys and their order: jellyfin/jellyfin-plugin-webhook
# Jellyfin.Plugin.Webhook/Helpers/DataObjectHelpers.cs @071ef138 (GetBaseDataObject,
# AddBaseItemData, AddPlaybackProgressData, AddUserItemData).

_SERIES_ID = UUID("6213b704-a0d9-5429-3110-f4d561b0f614")  # jellyfin-plugin-webhook#204
_USER_ID = UUID("d408915d-7777-4584-8806-47012f0c3306")  # jellyfin-plugin-webhook#121
_LOCAL = timezone(timedelta(hours=1))
_EPISODE_ONLY = (
    "SeriesName",
    "SeriesId",
    "SeasonId",
    "SeriesPremiereDate",
    "SeasonNumber",
    "SeasonNumber00",
    "SeasonNumber000",
    "EpisodeNumber",
    "EpisodeNumber00",
    "EpisodeNumber000",
    "Provider_tvdb",
    "Provider_imdb",
)
_PLAYBACK_ONLY = (
    "PlaybackPosition",
    "MediaSourceId",
    "IsPaused",
    "IsAutomated",
    "DeviceId",
    "DeviceName",
    "ClientName",
    "PlayMethod",
    "PlayedToCompletion",
)

JELLYFIN_PLAYBACK_STOP: dict[str, Any] = {
    "ServerId": "a39287daff5b4c0c9d2e6f1a7b3c8d41",
    "ServerName": "jellyfin",
    "ServerVersion": "10.9.11",
    "ServerUrl": "",
    "NotificationType": "PlaybackStop",
    "Timestamp": datetime(2024, 1, 1, 20, 0, tzinfo=_LOCAL),
    "UtcTimestamp": datetime(2024, 1, 1, 19, 0, tzinfo=UTC),
    "Name": "The World's Strongest Senior",
    "Overview": "The world is shaken by news",
    "Tagline": "",
    "ItemId": UUID("3f1c6a0e-5b7d-4e2a-9c8f-0d1e2f3a4b5c"),
    "ItemType": "Episode",
    "RunTimeTicks": 15_000_000_000,
    "RunTime": "00:25:00",
    "Year": 2021,
    "PremiereDate": "2021-09-30",
    "Genres": "Animation, Action & Adventure",
    "Path": "/media/Baki Hanma/Season 01/Baki Hanma - S01E01.mkv",
    "SeriesName": "Baki Hanma",
    "SeriesId": _SERIES_ID,
    "SeasonId": UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
    "SeriesPremiereDate": "2021-09-30",
    "SeasonNumber": 1,
    "SeasonNumber00": "01",
    "SeasonNumber000": "001",
    "EpisodeNumber": 1,
    "EpisodeNumber00": "01",
    "EpisodeNumber000": "001",
    "Provider_tvdb": "8530933",
    "Provider_imdb": "tt14765720",
    "Video_0_Title": "1080p H264 SDR",
    "Audio_0_Language": "jpn",
    "PlaybackPositionTicks": 14_400_000_000,
    "PlaybackPosition": "00:24:00",
    "MediaSourceId": "3f1c6a0e5b7d4e2a9c8f0d1e2f3a4b5c",
    "IsPaused": False,
    "IsAutomated": False,
    "DeviceId": "TW96aWxsYS81LjA",
    "DeviceName": "Chrome",
    "ClientName": "Jellyfin Web",
    "PlayMethod": "DirectPlay",
    "PlayedToCompletion": True,
    "NotificationUsername": "mika",
    "UserId": _USER_ID,
}
"""PlaybackStop of an episode, stopped at 96% and played to completion. Derived: the key set
of DataObjectHelpers.cs @071ef138 and Notifiers/PlaybackStopNotifier.cs @4c454578 (which sets
PlayedToCompletion, NotificationUsername unescaped and UserId per user), as listed in sample
(b) of the research notes; the values are illustrative (the episode is the one of the Plex
sample below: its own TheTVDB and IMDb ids, no series ids, as the plugin sends)."""

JELLYFIN_PLAYBACK_START: dict[str, Any] = _merged(
    JELLYFIN_PLAYBACK_STOP,
    {
        "NotificationType": "PlaybackStart",
        "PlaybackPositionTicks": 0,
        "PlaybackPosition": "00:00:00",
        "PlayedToCompletion": None,
    },
)
"""PlaybackStart of the same episode. Derived: Notifiers/PlaybackStartNotifier.cs @4c454578
adds the playback progress keys but no PlayedToCompletion."""

JELLYFIN_USER_DATA_SAVED: dict[str, Any] = _merged(
    JELLYFIN_PLAYBACK_STOP,
    {
        "NotificationType": "UserDataSaved",
        **dict.fromkeys(_PLAYBACK_ONLY),
        "Likes": False,
        "Rating": 0,
        "PlaybackPositionTicks": 0,
        "PlaybackPosition": "00:00:00",
        "PlayCount": 1,
        "Favorite": False,
        "Played": True,
        "AudioStreamIndex": -1,
        "SubtitleStreamIndex": -1,
        "LastPlayedDate": datetime(2024, 1, 1, 19, 0, tzinfo=UTC),
        "SaveReason": "TogglePlayed",
        "NotificationUsername": "mika",
        "UserId": _USER_ID,
    },
)
"""UserDataSaved of the same episode, ticked as played in the web client (SaveReason
TogglePlayed, Played true). Derived: Notifiers/UserDataSavedNotifier/
UserDataSavedNotifierEntryPoint.cs (base item data, AddUserItemData, then SaveReason,
NotificationUsername and UserId); SaveReason names from jellyfin/jellyfin
MediaBrowser.Model/Entities/UserDataSaveReason.cs @e65b6ed5."""

JELLYFIN_MOVIE_STOP: dict[str, Any] = _merged(
    JELLYFIN_PLAYBACK_STOP,
    {
        **dict.fromkeys(_EPISODE_ONLY),
        "Name": "Spider-Man: Across the Spider-Verse",
        "Overview": "Miles Morales catapults across the Multiverse.",
        "ItemId": UUID("0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e"),
        "ItemType": "Movie",
        "RunTimeTicks": 80_439_590_000,
        "RunTime": "02:14:03",
        "Year": 2023,
        "PremiereDate": "2023-05-30",
        "Genres": "Animation, Action, Adventure",
        "Path": "/media/Movies/Spider-Man Across the Spider-Verse (2023).mkv",
        "Provider_tmdb": "569094",
        "Provider_imdb": "tt9362722",
        "PlaybackPositionTicks": 79_000_000_000,
        "PlaybackPosition": "02:11:40",
    },
)
"""PlaybackStop of a film, played to completion: no series or season keys (AddBaseItemData
adds them for Season and Episode items only), the film's own TMDB and IMDb ids. Derived from
DataObjectHelpers.cs @071ef138; the ids are the film's in the Emby sample below."""

JELLYFIN_AUDIO_STOP: dict[str, Any] = _merged(
    JELLYFIN_PLAYBACK_STOP,
    {
        **dict.fromkeys(_EPISODE_ONLY),
        "Name": "Love The One You're With",
        "Overview": "",
        "ItemId": UUID("5c4d3e2f-1a0b-4c9d-8e7f-6a5b4c3d2e1f"),
        "ItemType": "Audio",
        "RunTimeTicks": 2_200_000_000,
        "RunTime": "00:03:40",
        "Year": 1970,
        "PremiereDate": None,
        "Genres": "Rock",
        "Path": "/media/Music/Stephen Stills/Stephen Stills/01 Love The One You're With.flac",
        "Album": "Stephen Stills",
        "Artist": "Stephen Stills",
        "Video_0_Title": None,
        "PlaybackPositionTicks": 2_200_000_000,
        "PlaybackPosition": "00:03:40",
    },
)
"""PlaybackStop of a song (ItemType Audio, with Album and Artist as AddBaseItemData writes
for Audio). Derived from DataObjectHelpers.cs @071ef138; the track is the one of the telegraf
Plex sample below."""


def _net_ticks(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0"


def _json_value(value: Any) -> Any:
    """How Jellyfin's JsonDefaults.Options write a value (jellyfin/jellyfin
    src/Jellyfin.Extensions/Json/Converters/JsonGuidConverter.cs: "N", no dashes;
    JsonDateTimeConverter.cs: a literal Z even on local times)."""
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, datetime):
        return _net_ticks(value) + "Z"
    return value


def _handlebars_text(value: Any) -> str:
    """How Handlebars.Net writes a value (Handlebars-Net/Handlebars.Net
    source/Handlebars/IO/Formatters/DefaultFormatters: bools as True/False, Guid's ToString()
    with dashes, DateTime as "O"); a missing or null value is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, datetime):
        zone = "Z" if value.tzinfo is UTC else value.isoformat(timespec="seconds")[19:]
        return _net_ticks(value) + zone
    return str(value)


_HTML = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#x27;",
    "`": "&#x60;",
    "=": "&#x3D;",
}
_SUBSTITUTION = re.compile(r"\{\{\{\s*([\w.]+)\s*\}\}\}|\{\{\s*([\w.]+)\s*\}\}")


def render_handlebars(template: str, data: Mapping[str, Any]) -> str:
    """A template of plain substitutions, as Handlebars.Net renders it: `{{Key}}` HTML-encoded
    (source/Handlebars/IO/HtmlEncoder.cs), `{{{Key}}}` raw; keys looked up case-insensitively
    (the plugin's dictionary uses StringComparer.OrdinalIgnoreCase)."""
    if "{{" in _SUBSTITUTION.sub("", template):
        raise ValueError("The template uses more than plain {{Key}} substitutions.")
    values = {key.lower(): value for key, value in data.items()}

    def substitute(match: re.Match[str]) -> str:
        raw, encoded = match.groups()
        text = _handlebars_text(values.get((raw or encoded).lower()))
        return text if raw else "".join(_HTML.get(char, char) for char in text)

    return _SUBSTITUTION.sub(substitute, template)


def jellyfin_data(sample: Mapping[str, Any] = JELLYFIN_PLAYBACK_STOP, /, **overrides: Any) -> dict:
    """The plugin's data dictionary for one webhook (C# types), before it is sent. Strings
    given for the escaped keys are escaped as the plugin does (`"` -> `\\"`)."""
    for key in ("Name", "Overview", "Tagline", "ItemType", "SeriesName", "ServerName"):
        if isinstance(overrides.get(key), str):
            overrides[key] = overrides[key].replace('"', '\\"')
    return _merged(sample, overrides)


def jellyfin_all_properties(
    sample: Mapping[str, Any] = JELLYFIN_PLAYBACK_STOP, /, **overrides: Any
) -> dict[str, Any]:
    """The JSON the Generic destination posts with "Send All Properties" on:
    `JsonSerializer.Serialize(data, JsonDefaults.Options)` (Destinations/BaseOption.cs
    @0b0ff8b8): keys as written, Guids as 32 hex digits, native bools and numbers."""
    return {key: _json_value(value) for key, value in jellyfin_data(sample, **overrides).items()}


def jellyfin_template(sample: Mapping[str, Any] = JELLYFIN_PLAYBACK_STOP, /, **values: Any) -> str:
    """The body the Generic destination posts with docs/jellyfin-webhook-template.hbs as its
    template: `Handlebars.Compile(template)(data)` (Destinations/BaseOption.cs @0b0ff8b8), so
    dashed Guids, True/False, numbers as text, and "" for a key the event does not have."""
    template = TEMPLATE_PATH.read_text(encoding="utf-8")
    return render_handlebars(template, jellyfin_data(sample, **values))


# --- Plex -----------------------------------------------------------------------------------


def _sample(text: str) -> dict[str, Any]:
    return json.loads(text)


PLEX_EPISODE_SCROBBLE: dict[str, Any] = _sample(
    r"""
{
  "event": "media.scrobble",
  "user": false,
  "owner": true,
  "Account": {
    "id": 31646104,
    "thumb": "https://plex.tv/users/xx",
    "title": "播放"
  },
  "Server": {
    "title": "Media-Server",
    "uuid": "xxxx"
  },
  "Player": {
    "local": false,
    "publicAddress": "xx.xx.xx.xx",
    "title": "MagicBook",
    "uuid": "wu0uoa1ujfq90t0c5p9f7fw0"
  },
  "Metadata": {
    "librarySectionType": "show",
    "ratingKey": "40294",
    "key": "/library/metadata/40294",
    "parentRatingKey": "40291",
    "grandparentRatingKey": "40275",
    "guid": "plex://episode/615580a9fa828e7f1a0caabd",
    "parentGuid": "plex://season/615580a9fa828e7f1a0caab8",
    "grandparentGuid": "plex://show/60e81fd8d8000e002d7d2976",
    "type": "episode",
    "title": "The World's Strongest Senior",
    "titleSort": "World's Strongest Senior",
    "grandparentKey": "/library/metadata/40275",
    "parentKey": "/library/metadata/40291",
    "librarySectionTitle": "动漫剧集",
    "librarySectionID": 7,
    "librarySectionKey": "/library/sections/7",
    "grandparentTitle": "范马刃牙",
    "parentTitle": "Combat Shadow Fighting Saga / Great Prison Battle Saga",
    "originalTitle": "Baki Hanma",
    "contentRating": "TV-MA",
    "summary": "The world is shaken by news",
    "index": 1,
    "parentIndex": 1,
    "audienceRating": 8.5,
    "viewCount": 1,
    "lastViewedAt": 1694320444,
    "year": 2021,
    "thumb": "/library/metadata/40294/thumb/1693544504",
    "art": "/library/metadata/40275/art/1693952979",
    "parentThumb": "/library/metadata/40291/thumb/1691115271",
    "grandparentThumb": "/library/metadata/40275/thumb/1693952979",
    "grandparentArt": "/library/metadata/40275/art/1693952979",
    "duration": 1500000,
    "originallyAvailableAt": "2021-09-30",
    "addedAt": 1691115281,
    "updatedAt": 1693544504,
    "audienceRatingImage": "themoviedb://image.rating",
    "Guid": [
      {
        "id": "imdb://tt14765720"
      },
      {
        "id": "tmdb://3087250"
      },
      {
        "id": "tvdb://8530933"
      }
    ],
    "Rating": [
      {
        "image": "themoviedb://image.rating",
        "value": 8.5,
        "type": "audience"
      }
    ],
    "Director": [
      {
        "id": 115144,
        "filter": "director=115144",
        "tag": "Keiya Saito",
        "tagKey": "5f401c8d04a86500409ea6c1"
      }
    ],
    "Writer": [
      {
        "id": 115135,
        "filter": "writer=115135",
        "tag": "Tatsuhiko Urahata",
        "tagKey": "5d7768e07a53e9001e6db1ce",
        "thumb": "https://metadata-static.plex.tv/f/people/f6f90dc89fa87d459f85d40a09720c05.jpg"
      }
    ]
  }
}
"""
)
"""media.scrobble of an episode matched by the Plex agent: `Metadata.Guid` holds the episode's
own IMDb/TMDB/TheTVDB ids, the show is only `grandparent*` (a plex:// guid). Verbatim: a real
payload pasted in jxxghp/MoviePilot app/modules/plex/plex.py, docstring of
get_webhook_message (partly redacted by its author with "xx"). It has no viewOffset."""

PLEX_EPISODE_STOP: dict[str, Any] = _merged(
    PLEX_EPISODE_SCROBBLE, {"event": "media.stop", "Metadata": {"viewOffset": 1_440_000}}
)
"""media.stop of the same episode at 96% (viewOffset and duration in ms). Derived: the event
name from the Plex support article "Webhooks" (support.plex.tv 115002267687), the field from
eliasbenb/PlexAniBridge src/models/schemas/plex.py (`Metadata.viewOffset`, int ms)."""

PLEX_EPISODE_PLAY: dict[str, Any] = _merged(
    PLEX_EPISODE_SCROBBLE, {"event": "media.play", "Metadata": {"viewOffset": 0}}
)
"""media.play of the same episode. Derived: the event name from the Plex support article
"Webhooks"; the payload is the episode's, as for every media.* event."""

PLEX_HAMA_TVDB_EPISODE: dict[str, Any] = _sample(
    r"""
{"Account":{"id":12345,"thumb":"https://plex.tv/users/testuser/avatar?c=1234567890","title":"TestUser"},"Metadata":{"Image":[{"alt":"HDTV- - Please","type":"coverPoster","url":"/library/metadata/3484/thumb/1758472311"}],"addedAt":1766938180,"art":"/library/metadata/3484/art/1758472311","contentRating":"TV-Y7","grandparentArt":"/library/metadata/3484/art/1758472311","grandparentGuid":"com.plexapp.agents.hama://tvdb-81797?lang=en","grandparentKey":"/library/metadata/3484","grandparentRatingKey":"3484","grandparentThumb":"/library/metadata/3484/thumb/1758472311","grandparentTitle":"One Piece","guid":"com.plexapp.agents.hama://tvdb-81797/22/70?lang=en","index":70,"key":"/library/metadata/31444","lastViewedAt":1767117106,"librarySectionID":1,"librarySectionKey":"/library/sections/1","librarySectionTitle":"Anime","librarySectionType":"show","parentGuid":"com.plexapp.agents.hama://tvdb-81797/22?lang=en","parentIndex":22,"parentKey":"/library/metadata/29456","parentRatingKey":"29456","parentThumb":"/library/metadata/29456/thumb/1758206535","parentTitle":"Season 22","ratingKey":"31444","summary":"","thumb":"/library/metadata/31444/thumb/1766938222","title":"HDTV- - Please","type":"episode","updatedAt":1766938222,"viewCount":1},"Player":{"local":false,"publicAddress":"192.168.1.100","title":"Chrome","uuid":"test-player-uuid"},"Server":{"title":"Test Server","uuid":"test-server-uuid-12345"},"event":"media.scrobble","owner":true,"user":true}
"""  # noqa: E501 (verbatim)
)
"""media.scrobble of an episode matched by the legacy HAMA agent in TheTVDB mode: no `Guid`
list, the show's TheTVDB id with season and episode in `guid`
(com.plexapp.agents.hama://tvdb-81797/22/70?lang=en). Verbatim: varoOP/shinkro
internal/testdata/mocks.go, RawPlexWebhookHAMAEpisode() ("Based on actual payload structure
from production")."""

PLEX_HAMA_ANIDB_EPISODE: dict[str, Any] = _sample(
    r"""
{"Account":{"id":1,"thumb":"","title":"TestUser"},"Metadata":{"grandparentTitle":"Attack on Titan","guid":"com.plexapp.agents.hama://anidb-12345/1/5?lang=en","index":5,"parentIndex":1,"librarySectionTitle":"Anime","type":"episode","title":"Episode 5"},"Player":{"local":true,"title":"Chrome","uuid":"test-uuid"},"Server":{"title":"Test Server","uuid":"test-server-uuid"},"event":"media.scrobble","owner":true,"user":true}
"""  # noqa: E501 (verbatim)
)
"""media.scrobble of an episode matched by HAMA in AniDB mode
(com.plexapp.agents.hama://anidb-12345/1/5?lang=en). Verbatim: varoOP/shinkro
internal/testdata/mocks.go, the AniDB variant (a synthetic fixture)."""

PLEX_THETVDB_EPISODE: dict[str, Any] = _merged(
    PLEX_HAMA_TVDB_EPISODE,
    {
        "Metadata": {
            "guid": "com.plexapp.agents.thetvdb://81189/1/2?lang=en",
            "parentGuid": "com.plexapp.agents.thetvdb://81189/1?lang=en",
            "grandparentGuid": "com.plexapp.agents.thetvdb://81189?lang=en",
            "grandparentTitle": "Breaking Bad",
            "parentTitle": "Season 1",
            "title": "Cat's in the Bag...",
            "parentIndex": 1,
            "index": 2,
            "librarySectionTitle": "TV Shows",
            "Image": None,
        }
    },
)
"""media.scrobble of an episode matched by the legacy TheTVDB agent: series/season/episode in
`guid`. Derived: the HAMA sample above with the guid format
com.plexapp.agents.thetvdb://81189/1/2?lang=en (a public importer's regex, seen by code search;
its repository was not resolved, so the format is corroborated rather than sourced)."""

PLEX_TRACK_PLAY: dict[str, Any] = _sample(
    r"""
{
    "event": "media.play",
    "user": true,
    "owner": true,
    "Account": {
       "id": 1,
       "thumb": "https://plex.tv/users/1022b120ffbaa/avatar?c=1465525047",
       "title": "elan"
    },
    "Server": {
       "title": "Office",
       "uuid": "54664a3d8acc39983675640ec9ce00b70af9cc36"
    },
    "Player": {
       "local": true,
       "publicAddress": "200.200.200.200",
       "title": "Plex Web (Safari)",
       "uuid": "r6yfkdnfggbh2bdnvkffwbms"
    },
    "Metadata": {
       "librarySectionType": "artist",
       "ratingKey": "1936545",
       "key": "/library/metadata/1936545",
       "parentRatingKey": "1936544",
       "grandparentRatingKey": "1936543",
       "guid": "com.plexapp.agents.plexmusic://gracenote/track/7572499-91016293BE6BF7F1AB2F848F736E74E5/7572500-3CBAE310D4F3E66C285E104A1458B272?lang=en",
       "librarySectionID": 1224,
       "type": "track",
       "title": "Love The One You're With",
       "grandparentKey": "/library/metadata/1936543",
       "parentKey": "/library/metadata/1936544",
       "grandparentTitle": "Stephen Stills",
       "parentTitle": "Stephen Stills",
       "summary": "",
       "index": 1,
       "parentIndex": 1,
       "ratingCount": 6794,
       "thumb": "/library/metadata/1936544/thumb/1432897518",
       "art": "/library/metadata/1936543/art/1485951497",
       "parentThumb": "/library/metadata/1936544/thumb/1432897518",
       "grandparentThumb": "/library/metadata/1936543/thumb/1485951497",
       "grandparentArt": "/library/metadata/1936543/art/1485951497",
       "addedAt": 1000396126,
       "updatedAt": 1432897518
    }
 }
"""
)
"""media.play of a music track (type "track", librarySectionType "artist"). Verbatim:
influxdata/telegraf plugins/inputs/webhooks/plex/plex_webhooks_mock_json.go (probably the
example of Plex's support article; not confirmed)."""

PLEX_MOVIE_SCROBBLE: dict[str, Any] = _merged(
    PLEX_EPISODE_SCROBBLE,
    {
        "Metadata": {
            **dict.fromkeys(
                (
                    "parentRatingKey",
                    "grandparentRatingKey",
                    "parentGuid",
                    "grandparentGuid",
                    "grandparentKey",
                    "parentKey",
                    "grandparentTitle",
                    "parentTitle",
                    "index",
                    "parentIndex",
                    "parentThumb",
                    "grandparentThumb",
                    "grandparentArt",
                    "Director",
                    "Writer",
                )
            ),
            "librarySectionType": "movie",
            "ratingKey": "41012",
            "key": "/library/metadata/41012",
            "guid": "plex://movie/5d776d1847dd6e001f6f0b9a",
            "type": "movie",
            "title": "Spider-Man: Across the Spider-Verse",
            "titleSort": "Spider-Man: Across the Spider-Verse",
            "librarySectionTitle": "Movies",
            "librarySectionID": 2,
            "librarySectionKey": "/library/sections/2",
            "originalTitle": "Spider-Man: Across the Spider-Verse",
            "contentRating": "PG",
            "summary": "Miles Morales catapults across the Multiverse.",
            "year": 2023,
            "thumb": "/library/metadata/41012/thumb/1693544504",
            "art": "/library/metadata/41012/art/1693544504",
            "duration": 8_043_959,
            "originallyAvailableAt": "2023-05-30",
            "Guid": [{"id": "imdb://tt9362722"}, {"id": "tmdb://569094"}],
        }
    },
)
"""media.scrobble of a film matched by the Plex agent. Derived: the episode sample above with
the fields eliasbenb/PlexAniBridge src/models/schemas/plex.py and varoOP/shinkro
internal/domain/plex.go model for films (type "movie", librarySectionType "movie", `Guid` with
imdb:// and tmdb://, no grandparent/parent keys); ids of the film in the Emby sample below."""


def plex_payload(
    sample: Mapping[str, Any] = PLEX_EPISODE_SCROBBLE, /, **overrides: Any
) -> dict[str, Any]:
    """A Plex webhook's JSON (the `payload` part); `Metadata={...}` merges into Metadata."""
    return _merged(sample, overrides)


def _multipart(field: str, part_headers: str, text: str, boundary: str) -> tuple[bytes, str]:
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"\r\n'
        f"{part_headers}\r\n"
        f"{text}\r\n"
        f"--{boundary}--\r\n"
    )
    return body.encode(), f"multipart/form-data; boundary={boundary}"


def plex_multipart(payload: Mapping[str, Any]) -> tuple[bytes, str]:
    """The body Plex posts, and its Content-Type header: multipart/form-data with the JSON in
    the form field `payload` (a part with Content-Type application/json), as in the raw body
    quoted in ryck/scrobblex#22, whose boundary this reuses. The thumbnail part Plex adds to
    some events is left out: its field name is not confirmed."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    headers = "Content-Type: application/json\r\n"
    return _multipart("payload", headers, text, "------------------------j4fqHSAc9FtAnWDn0DyJIL")


# --- Emby -----------------------------------------------------------------------------------

EMBY_MOVIE_STOP: dict[str, Any] = _sample(
    r"""
{
  "Title": "admin 在 Microsoft Edge Windows 上停止播放 蜘蛛侠：纵横宇宙",
  "Date": "2023-08-19T00:49:07.8523469Z",
  "Event": "playback.stop",
  "User": {
    "Name": "admin",
    "Id": "e6a9dd89fd954d689870e7e0e3e72947"
  },
  "Item": {
    "Name": "蜘蛛侠：纵横宇宙",
    "OriginalTitle": "Spider-Man: Across the Spider-Verse",
    "ServerId": "f40a5bd0c6b64051bdbed00580fa1118",
    "Id": "240270",
    "DateCreated": "2023-06-21T21:01:27.0000000Z",
    "Container": "mp4",
    "SortName": "蜘蛛侠：纵横宇宙",
    "PremiereDate": "2023-05-30T16:00:00.0000000Z",
    "ExternalUrls": [
      {
        "Name": "IMDb",
        "Url": "https://www.imdb.com/title/tt9362722"
      },
      {
        "Name": "TheMovieDb",
        "Url": "https://www.themoviedb.org/movie/569094"
      },
      {
        "Name": "Trakt",
        "Url": "https://trakt.tv/search/tmdb/569094?id_type=movie"
      }
    ],
    "Path": "\\\\10.10.10.10\\Video\\电影\\动画电影\\蜘蛛侠：纵横宇宙 (2023)\\蜘蛛侠：纵横宇宙 (2023).mp4",
    "OfficialRating": "PG",
    "Overview": "讲述了新生代蜘蛛侠迈尔斯（沙梅克·摩尔 Shameik Moore 配音）携手蜘蛛格温（海莉·斯坦菲尔德 Hailee Steinfeld 配音），穿越多元宇宙踏上更宏大的冒险征程的故事。面临每个蜘蛛侠都会失去至亲的宿命，迈尔斯誓言打破命运魔咒，找到属于自己的英雄之路。而这个决定和蜘蛛侠2099（奥斯卡·伊萨克 Oscar Is aac 配音）所领军的蜘蛛联盟产生了极大冲突，一场以一敌百的蜘蛛侠大内战即将拉响！",
    "Taglines": [],
    "Genres": [
      "动作",
      "冒险",
      "动画",
      "科幻"
    ],
    "CommunityRating": 8.7,
    "RunTimeTicks": 80439590000,
    "Size": 3170164641,
    "FileName": "蜘蛛侠：纵横宇宙 (2023).mp4",
    "Bitrate": 3152840,
    "PlayAccess": "Full",
    "ProductionYear": 2023,
    "RemoteTrailers": [
      {
        "Url": "https://www.youtube.com/watch?v=BbXJ3_AQE_o"
      },
      {
        "Url": "https://www.youtube.com/watch?v=cqGjhVJWtEg"
      },
      {
        "Url": "https://www.youtube.com/watch?v=shW9i6k8cB0"
      },
      {
        "Url": "https://www.youtube.com/watch?v=Etv-L2JKCWk"
      },
      {
        "Url": "https://www.youtube.com/watch?v=yFrxzaBLDQM"
      }
    ],
    "ProviderIds": {
      "Tmdb": "569094",
      "Imdb": "tt9362722"
    },
    "IsFolder": false,
    "ParentId": "240253",
    "Type": "Movie",
    "Studios": [
      {
        "Name": "Columbia Pictures",
        "Id": 1252
      },
      {
        "Name": "Sony Pictures Animation",
        "Id": 1814
      },
      {
        "Name": "Lord Miller",
        "Id": 240307
      },
      {
        "Name": "Pascal Pictures",
        "Id": 60101
      },
      {
        "Name": "Arad Productions",
        "Id": 67372
      }
    ],
    "GenreItems": [
      {
        "Name": "动作",
        "Id": 767
      },
      {
        "Name": "冒险",
        "Id": 818
      },
      {
        "Name": "动画",
        "Id": 1382
      },
      {
        "Name": "科幻",
        "Id": 709
      }
    ],
    "TagItems": [],
    "PrimaryImageAspectRatio": 0.7012622720897616,
    "ImageTags": {
      "Primary": "c080830ff3c964a775dd0b011b675a29",
      "Art": "a418b990ca0df95838884b5951883ad5",
      "Logo": "1782310274c108e85d02d2b0b1c7249c",
      "Thumb": "29d499a96b7da07cd1cf37edb58507a8",
      "Banner": "bec236365d57f7f646d8fda16fce2ecb",
      "Disc": "3e32d87be8655f52bcf43bd34ee94c2b"
    },
    "BackdropImageTags": [
      "13acab1246c95a6fbdee22cf65edf3f0"
    ],
    "MediaType": "Video",
    "Width": 1920,
    "Height": 820
  },
  "Server": {
    "Name": "PN41",
    "Id": "f40a5bd0c6b64051bdbed00580fa1118",
    "Version": "4.7.13.0"
  },
  "Session": {
    "RemoteEndPoint": "10.10.10.253",
    "Client": "Emby Web",
    "DeviceName": "Microsoft Edge Windows",
    "DeviceId": "30239450-1748-4855-9799-de3544fc2744",
    "ApplicationVersion": "4.7.13.0",
    "Id": "c336b028b893558b333d1a49238b7db1"
  },
  "PlaybackInfo": {
    "PlayedToCompletion": false,
    "PositionTicks": 17431791950,
    "PlaylistIndex": 0,
    "PlaylistLength": 1
  }
}
"""  # noqa: E501, RUF001 (verbatim)
)
"""playback.stop of a film at 22%, PlaybackInfo.PlayedToCompletion false. Verbatim: a real
payload (Emby 4.7.13.0) pasted in jxxghp/MoviePilot app/modules/emby/emby.py, docstring of
get_webhook_message."""

EMBY_EPISODE_START: dict[str, Any] = _sample(
    r"""
{
  "Title": "admin 在 Microsoft Edge Windows 上开始播放 长风渡 - S1, Ep11 - 第 11 集",
  "Date": "2023-08-19T00:52:20.5200050Z",
  "Event": "playback.start",
  "User": {
    "Name": "admin",
    "Id": "e6a9dd89fd954d689870e7e0e3e72947"
  },
  "Item": {
    "Name": "第 11 集",
    "ServerId": "f40a5bd0c6b64051bdbed00580fa1118",
    "Id": "240252",
    "DateCreated": "2023-06-21T10:51:06.0000000Z",
    "Container": "mp4",
    "SortName": "第 11 集",
    "PremiereDate": "2023-06-20T16:00:00.0000000Z",
    "ExternalUrls": [
      {
        "Name": "Trakt",
        "Url": "https://trakt.tv/search/tmdb/4533239?id_type=episode"
      }
    ],
    "Path": "\\\\10.10.10.10\\Video\\电视剧\\国产剧\\长风渡 (2023)\\Season 1\\长风渡 - S01E11 - 第 11 集.mp4",
    "Taglines": [],
    "Genres": [],
    "RunTimeTicks": 28021450000,
    "Size": 707122056,
    "FileName": "长风渡 - S01E11 - 第 11 集.mp4",
    "Bitrate": 2018802,
    "PlayAccess": "Full",
    "ProductionYear": 2023,
    "IndexNumber": 11,
    "ParentIndexNumber": 1,
    "RemoteTrailers": [],
    "ProviderIds": {
      "Tmdb": "4533239"
    },
    "IsFolder": false,
    "ParentId": "240203",
    "Type": "Episode",
    "Studios": [],
    "GenreItems": [],
    "TagItems": [],
    "ParentLogoItemId": "240202",
    "ParentBackdropItemId": "240202",
    "ParentBackdropImageTags": [
      "7dd568c67721c1f184b281001ced2f8e"
    ],
    "SeriesName": "长风渡",
    "SeriesId": "240202",
    "SeasonId": "240203",
    "PrimaryImageAspectRatio": 2.4,
    "SeriesPrimaryImageTag": "e91c822173e9bcbf7a0efa7d1c16f6bd",
    "SeasonName": "季 1",
    "ImageTags": {
      "Primary": "d6bf1d76150cd86fdff746e4353569ee"
    },
    "BackdropImageTags": [],
    "ParentLogoImageTag": "51cf6b2661c3c9cef3796abafd6a1694",
    "MediaType": "Video",
    "Width": 1920,
    "Height": 800
  },
  "Server": {
    "Name": "PN41",
    "Id": "f40a5bd0c6b64051bdbed00580fa1118",
    "Version": "4.7.13.0"
  },
  "Session": {
    "RemoteEndPoint": "10.10.10.253",
    "Client": "Emby Web",
    "DeviceName": "Microsoft Edge Windows",
    "DeviceId": "30239450-1748-4855-9799-de3544fc2744",
    "ApplicationVersion": "4.7.13.0",
    "Id": "c336b028b893558b333d1a49238b7db1"
  },
  "PlaybackInfo": {
    "PositionTicks": 14256663550,
    "PlaylistIndex": 10,
    "PlaylistLength": 40
  }
}
"""  # noqa: E501 (verbatim)
)
"""playback.start of an episode: `Item.ProviderIds` are the episode's own (Tmdb 4533239),
PlaybackInfo has no PlayedToCompletion. Verbatim: jxxghp/MoviePilot app/modules/emby/emby.py,
docstring of get_webhook_message."""

EMBY_EPISODE_STOP: dict[str, Any] = _merged(
    EMBY_EPISODE_START,
    {
        "Title": "admin 在 Microsoft Edge Windows 上停止播放 长风渡 - S1, Ep11 - 第 11 集",
        "Event": "playback.stop",
        "PlaybackInfo": {"PlayedToCompletion": True, "PositionTicks": 27_900_000_000},
    },
)
"""playback.stop of the same episode, played to completion. Derived: the playback.start sample
above with the `PlaybackInfo` of the playback.stop sample (PlayedToCompletion, PositionTicks;
same source); McCloudS/subgen#17 quotes a real playback.stop of an episode (truncated there)
with the same envelope."""

EMBY_EPISODE_MARKPLAYED: dict[str, Any] = _merged(
    EMBY_EPISODE_START, {"Title": None, "Event": "item.markplayed", "PlaybackInfo": None}
)
"""item.markplayed of the same episode (a manual tick). Derived: no capture of this event was
found; receivers' fixtures (FuzzyGrim/Yamtrack src/integrations/tests/test_webhooks_emby.py
@33e859c) use the same envelope without PlaybackInfo. The event name is from arabcoders/
watchstate src/Backends/Emby/Action/ParseWebhook.php. Its Title wording is unknown: left out."""

EMBY_AUDIO_STOP: dict[str, Any] = {
    **_merged(
        EMBY_MOVIE_STOP,
        {
            "Title": None,
            "PlaybackInfo": {"PlayedToCompletion": True, "PositionTicks": 2_200_000_000},
        },
    ),
    "Item": {
        "Name": "Love The One You're With",
        "ServerId": "f40a5bd0c6b64051bdbed00580fa1118",
        "Id": "251001",
        "RunTimeTicks": 2_200_000_000,
        "IsFolder": False,
        "Type": "Audio",
        "MediaType": "Audio",
    },
}
"""playback.stop of a song, played to completion. Derived and not confirmed: the envelope of
the playback.stop sample, with an Item reduced to the BaseItemDto fields the samples show and
Type "Audio" (the type name Jellyfin, Emby's fork, sends for songs)."""

EMBY_SPECIAL_STOP: dict[str, Any] = _merged(
    EMBY_EPISODE_STOP,
    {
        "Title": None,
        "Item": {
            "Name": "特别篇",
            "Id": "240299",
            "IndexNumber": 2,
            "ParentIndexNumber": 0,
            "SeasonId": "240298",
            "SeasonName": None,
            "ProviderIds": {"Tmdb": "4533301"},
        },
    },
)
"""playback.stop of a special (season 0, `ParentIndexNumber` 0), played to completion. Derived:
the episode playback.stop above with the season and episode numbers changed; ids illustrative,
SeasonName (what Emby calls season 0) left out."""


def emby_payload(sample: Mapping[str, Any] = EMBY_EPISODE_STOP, /, **overrides: Any) -> dict:
    """An Emby webhook's JSON (the `data` part, or the whole body with "Request content type"
    application/json in Emby 4.9+); `Item={...}` merges into Item."""
    return _merged(sample, overrides)


def emby_multipart(payload: Mapping[str, Any]) -> tuple[bytes, str]:
    """The body Emby posts by default, and its Content-Type header: multipart/form-data with
    the JSON in the form field `data` (MediaBrowser/Emby#3954; FuzzyGrim/Yamtrack
    src/integrations/views.py @4eb29fd reads request.POST["data"]). The part's other headers
    and the boundary's form are not confirmed; this sends only Content-Disposition."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return _multipart("data", "", text, "6b1f2c9e-4d3a-4e8b-9f0c-2a7d5e1b3c84")
