"""Kitsu <-> Revenge mapping: fields, statuses and ratings, as pure functions.

Input is a `Resource` from `kitsu_api.jsonapi`; output is a plain dict keyed by Revenge model
field names. For anything the deserialiser accepts, these functions either return or raise
`MappingError`; nothing else escapes.

How wrong-typed values are treated (one rule per kind of field):

* identity (resource type, ids, entry status, entry `updatedAt`): required; wrong -> MappingError.
* anime display text (titles, overview, slug, image URLs): not a string -> '' (Kitsu owns it and
  the next refresh repairs it; a bad poster must not block a library import).
* anime `status` / `subtype`: an unknown value -> '' (Kitsu computes them and may add values).
* numbers, booleans, dates and times: null -> the empty value; wrong type or out of range ->
  MappingError (a guessed number would be stored as fact).
* library-entry `notes`: null -> ''; wrong type -> MappingError (user data is never blanked).
* external ids: never fail; anything but a number -> None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from kitsu_sync.kitsu_api.jsonapi import Resource, ResourceIdentifier


class MappingError(ValueError):
    """A Kitsu value that cannot be mapped to a Revenge field."""


# Library-entry statuses, Revenge spelling; Kitsu spells them current/planned/... (snake_case).
REVENGE_STATUSES: tuple[str, ...] = ("watching", "completed", "on_hold", "dropped", "plan_to_watch")
KITSU_STATUSES: tuple[str, ...] = ("current", "completed", "on_hold", "dropped", "planned")
_STATUS_FROM_KITSU: dict[str, str] = dict(zip(KITSU_STATUSES, REVENGE_STATUSES, strict=True))
_STATUS_TO_KITSU: dict[str, str] = dict(zip(REVENGE_STATUSES, KITSU_STATUSES, strict=True))

# Kitsu media status is computed from the dates (KS Media#status) and is read-only.
AIRING_STATUSES: tuple[str, ...] = ("finished", "current", "upcoming", "unreleased", "tba")
# Kitsu's Anime subtype enum, in its own mixed case.
ANIME_SUBTYPES: tuple[str, ...] = ("TV", "special", "OVA", "ONA", "movie", "music")

# Kitsu quirk: user ratings are ratingTwenty, an integer 2..20 or null; Revenge scores are 0..100.
RATING_TWENTY_MIN = 2
RATING_TWENTY_MAX = 20
SCORE_MAX = 100
# Kitsu rejects reconsumeCount above 50 ("just... go outside").
RECONSUME_COUNT_MAX = 50


# How a Kitsu user rates (their `ratingSystem`; docs/kitsu-api.md): each choice as Revenge's
# score (0..100, ratingTwenty x 5) and the label Kitsu shows. Simple is four faces
# (ratingTwenty 2, 8, 14, 20); regular is 0.5 to 5 stars in halves (ratingTwenty 2, 4, ...
# 20, shown as floor(r20 / 2) / 2); advanced is 1 to 10 in halves (2..20, shown as r20 / 2).
RATING_SYSTEMS = ("simple", "regular", "advanced")
_SIMPLE = {2: "Awful", 8: "Meh", 14: "Good", 20: "Great"}


def score_choices(system: str) -> list[tuple[int, str]]:
    """The scores a user of this rating system can give, as (Revenge score, Kitsu's label);
    an unknown system is advanced (every value Kitsu stores)."""
    if system == "simple":
        return [(twenty * 5, label) for twenty, label in _SIMPLE.items()]
    if system == "regular":
        return [(twenty * 5, f"{twenty / 4:g} stars") for twenty in range(2, 21, 2)]
    return [(twenty * 5, f"{twenty / 2:g}") for twenty in range(2, 21)]


def score_label(score: int | None, system: str) -> str:
    """A Revenge score as the user sees it on Kitsu ("" for no rating)."""
    if not score:
        return ""
    twenty = max(2, min(20, round(score / 5)))
    if system == "simple":
        nearest = min(_SIMPLE, key=lambda value: (abs(value - twenty), -value))
        return _SIMPLE[nearest]
    if system == "regular":
        return f"{(twenty // 2) / 2:g} stars"  # Kitsu's own `rating`: floor(r20 / 2) / 2
    return f"{twenty / 2:g}"


def progress_cap(episode_count: int | None, start_date: date | None, today: date) -> int:
    """The most progress Kitsu accepts: the episode count; for a title of unknown length, the
    weeks since it started plus five (at least 50), or 100 with no start date
    (docs/kitsu-api.md, Kitsu's progress validation)."""
    if episode_count:
        return episode_count
    if start_date is None:
        return 100
    return max((today - start_date).days // 7 + 5, 50)


# Ids are stored as bigint, counts as int: larger values cannot be stored, so they are refused.
_MAX_ID = 2**63 - 1
_MAX_COUNT = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_TITLE_FALLBACK_LOCALES = ("en_jp", "en", "ja_jp")
_POSTER_SIZES = ("large", "medium", "original", "small")
_COVER_SIZES = ("large", "original")

_MAL_SITE = "myanimelist/anime"
_ANILIST_SITE = "anilist/anime"
_ANIDB_SITE = "anidb"
_TVDB_SERIES_SITE = "thetvdb/series"
_TVDB_OLD_SITE = "thetvdb"
EXTERNAL_ID_FIELDS: tuple[str, ...] = ("mal_id", "anilist_id", "anidb_id", "tvdb_id")
# Every field `anime_fields` returns (the external ids only when the mappings were included).
# Column sizes of the text fields `anime_fields` returns (models.Anime; a test keeps them equal).
ANIME_TEXT_LIMITS: dict[str, int] = {
    "slug": 255,
    "title": 500,
    "title_en": 500,
    "title_native": 500,
    "poster_url": 1000,
    "backdrop_url": 1000,
}
ANIME_FIELDS: tuple[str, ...] = (
    "kitsu_id",
    "slug",
    "title",
    "title_en",
    "title_native",
    "overview",
    "episode_count",
    "episode_duration",
    "airing_status",
    "kitsu_score",
    "kitsu_rank",
    "kitsu_popularity",
    "poster_url",
    "backdrop_url",
    "subtype",
    "nsfw",
    "start_date",
    "end_date",
    "kitsu_updated_at",
    *EXTERNAL_ID_FIELDS,
)

# Sparse fieldsets (`fields[type]=...`, docs/kitsu-api.md §4.4) for a library listing: exactly the
# attributes and relationships `library_entry_fields`, `anime_fields` and `external_ids` read.
# Kitsu leaves out everything else, above all the links of the dozen relationships every
# anime and entry carry: pages shrink to a fraction, for Kitsu, the network and the parser.
# The deprecated aliases (`synopsis`, `showType`) are not asked for: the current names are.
LIBRARY_FIELDSETS: dict[str, tuple[str, ...]] = {
    "libraryEntries": (
        "status",
        "progress",
        "ratingTwenty",
        "reconsuming",
        "reconsumeCount",
        "notes",
        "private",
        "startedAt",
        "finishedAt",
        "progressedAt",
        "updatedAt",
        "createdAt",
        "anime",
    ),
    "anime": (
        "slug",
        "canonicalTitle",
        "titles",
        "description",
        "episodeCount",
        "episodeLength",
        "status",
        "averageRating",
        "ratingRank",
        "popularityRank",
        "posterImage",
        "coverImage",
        "subtype",
        "nsfw",
        "ageRating",
        "startDate",
        "endDate",
        "updatedAt",
        "mappings",
    ),
    "mappings": ("externalSite", "externalId"),
}


# --- scalar helpers -------------------------------------------------------------------------


def _require_type(resource: Resource, expected: str) -> None:
    if resource.type != expected:
        raise MappingError(f"Expected a Kitsu {expected!r} resource, got {resource.type!r}.")


def _kitsu_id(value: Any, what: str) -> int:
    # Kitsu sends ids as strings of digits.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        raise MappingError(f"{what} must be a positive integer id, got {value!r}.")
    number = int(text)
    if not 0 < number <= _MAX_ID:
        raise MappingError(f"{what} is out of range: {value!r}.")
    return number


def _optional_count(value: Any, what: str) -> int | None:
    """A whole number >= 0, or None for null."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{what} must be a whole number, got {value!r}.")
    if not 0 <= value <= _MAX_COUNT:
        raise MappingError(f"{what} is out of range: {value!r}.")
    return value


def _count(value: Any, what: str) -> int:
    """Like `_optional_count`, with null meaning 0 (Kitsu's column default)."""
    number = _optional_count(value, what)
    return 0 if number is None else number


def _flag(value: Any, what: str, *, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise MappingError(f"{what} must be true or false, got {value!r}.")
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _shortened(text: str, limit: int) -> str:
    """Text cut to fit its column, marked with an ellipsis: one outsized title must not fail
    every sync of the page it is on."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _fitting(text: str, limit: int) -> str:
    """An identifier or URL that does not fit is dropped, not cut: a cut one points nowhere."""
    return text if len(text) <= limit else ""


def _first_text(source: Any, keys: Iterable[str]) -> str:
    if not isinstance(source, Mapping):
        return ""
    for key in keys:
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    return value if isinstance(value, str) and value in allowed else ""


def parse_kitsu_datetime(value: Any) -> datetime | None:
    """Parse a Kitsu timestamp (`2018-09-28T08:16:08.529Z`) to an aware UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise MappingError(f"A timestamp must be an ISO 8601 string, got {value!r}.")
    try:
        parsed = datetime.fromisoformat(value)
        # Kitsu writes every timestamp in UTC; a value without an offset means UTC too.
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise MappingError(f"Not an ISO 8601 timestamp: {value!r}.") from exc


def format_kitsu_datetime(value: datetime | date) -> str:
    """Format a time the way Kitsu writes it: UTC, milliseconds, `Z` (a date is its midnight)."""
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise MappingError(f"Expected a datetime or date, got {value!r}.")
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None or value.utcoffset() is None:
        raise MappingError(f"Refusing to send a naive datetime to Kitsu: {value!r}.")
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise MappingError(f"{value!r} is out of range once converted to UTC.") from exc
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def parse_kitsu_date(value: Any) -> date | None:
    """Parse a Kitsu calendar date (`YYYY-MM-DD`)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise MappingError(f"A date must look like YYYY-MM-DD, got {value!r}.")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise MappingError(f"Not a calendar date: {value!r}.") from exc


def _average_rating(value: Any) -> Decimal | None:
    # Kitsu quirk: averageRating is a decimal(5,2) sent as a STRING, null under 50 ratings.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(f"averageRating must be a decimal string, got {value!r}.")
    try:
        number = Decimal(str(value))
        if not number.is_finite() or not 0 <= number <= SCORE_MAX:
            raise MappingError(f"averageRating is outside 0..100: {value!r}.")
        return number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise MappingError(f"averageRating is not a number: {value!r}.") from exc


def _episode_minutes(value: Any) -> int | None:
    # Kitsu's episodeLength is already minutes (the API divides the stored seconds by 60).
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(f"episodeLength must be a number of minutes, got {value!r}.")
    if not 0 <= value <= _MAX_COUNT:
        raise MappingError(f"episodeLength is out of range: {value!r}.")
    return round(value)


# --- statuses and ratings -------------------------------------------------------------------


def status_from_kitsu(value: Any) -> str:
    """Kitsu library status (`current`, `planned`, ...) -> Revenge status."""
    if isinstance(value, str) and value in _STATUS_FROM_KITSU:
        return _STATUS_FROM_KITSU[value]
    raise MappingError(f"Unknown Kitsu library status {value!r}; expected one of {KITSU_STATUSES}.")


def status_to_kitsu(value: Any) -> str:
    """Revenge status -> the spelling Kitsu's enum accepts (it answers 500, not 422, otherwise)."""
    if isinstance(value, str) and value in _STATUS_TO_KITSU:
        return _STATUS_TO_KITSU[value]
    raise MappingError(f"Unknown Revenge status {value!r}; expected one of {REVENGE_STATUSES}.")


def score_from_rating_twenty(value: int | None) -> int | None:
    """Kitsu ratingTwenty (2..20, null = unrated) -> Revenge score (10..100, None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"ratingTwenty must be an integer or null, got {value!r}.")
    if not RATING_TWENTY_MIN <= value <= RATING_TWENTY_MAX:
        raise MappingError(f"ratingTwenty must be within 2..20, got {value!r}.")
    return value * 5


def rating_twenty_from_score(score: int | None) -> int | None:
    """Revenge score (0..100) -> ratingTwenty; None or 0 means no rating (null clears it).

    Kitsu cannot store 1..9 (ratingTwenty >= 2), so those become 2 rather than being dropped.
    """
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int):
        raise MappingError(f"A score must be an integer or None, got {score!r}.")
    if not 0 <= score <= SCORE_MAX:
        raise MappingError(f"A score must be within 0..100, got {score!r}.")
    if score == 0:
        return None
    # round(score / 5) in integers: score / 5 never ends in .5, so no tie rule is needed.
    nearest = (score + 2) // 5
    return min(max(nearest, RATING_TWENTY_MIN), RATING_TWENTY_MAX)


# --- resources ------------------------------------------------------------------------------


def _external_id(value: Any) -> int | None:
    # Kitsu quirk: externalId is always a string, and the site is not guaranteed to be numeric.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= _MAX_ID else None


def _old_tvdb_id(value: Any) -> int | None:
    # Old-style `thetvdb` mappings may name a season too ("76885/1"); the series is first.
    if isinstance(value, str):
        value = value.split("/", 1)[0]
    return _external_id(value)


def external_ids(mappings: Iterable[Resource]) -> dict[str, int | None]:
    """Cross-site ids (`mal_id`, `anilist_id`, `anidb_id`, `tvdb_id`) from `mappings` resources.

    Unknown sites (manga sites included) are ignored and a non-numeric id gives None; the first
    usable id per site wins. `thetvdb/series` is preferred to the old-style `thetvdb`.
    """
    found: dict[str, int] = {}
    for mapping in mappings:
        _require_type(mapping, "mappings")
        site = mapping.attributes.get("externalSite")
        if not isinstance(site, str) or site in found:
            continue
        raw = mapping.attributes.get("externalId")
        number = _old_tvdb_id(raw) if site == _TVDB_OLD_SITE else _external_id(raw)
        if number is not None:
            found[site] = number
    return {
        "mal_id": found.get(_MAL_SITE),
        "anilist_id": found.get(_ANILIST_SITE),
        "anidb_id": found.get(_ANIDB_SITE),
        "tvdb_id": found.get(_TVDB_SERIES_SITE, found.get(_TVDB_OLD_SITE)),
    }


def _loaded_mappings(resource: Resource) -> list[Resource] | None:
    """The anime's mappings when the payload carried them all, else None (ids unknown)."""
    relationship = resource.relationships.get("mappings")
    if relationship is None or not relationship.loaded:
        return None
    linkage = relationship.data
    if linkage is None:
        return []
    if not isinstance(linkage, list):
        raise MappingError("The anime's mappings relationship must be a to-many linkage.")
    mappings = resource.related_list("mappings")
    # Linkage naming mappings that were not included tells us they exist, not their ids.
    return mappings if len(mappings) == len(linkage) else None


def anime_fields(resource: Resource) -> dict[str, Any]:
    """Revenge `Anime` fields from a Kitsu `anime` resource.

    The external id fields are present only when the `mappings` relationship was included, so
    that an upsert from a payload without mappings never wipes ids already known.
    """
    _require_type(resource, "anime")
    attr = resource.attributes.get  # Resource.attr without a call per attribute
    titles = attr("titles")
    subtype = attr("subtype")
    if subtype is None:
        subtype = attr("showType")  # the deprecated alias of subtype
    nsfw_default = attr("ageRating") == "R18"  # Kitsu: nsfw is exactly ageRating R18
    limits = ANIME_TEXT_LIMITS
    fields: dict[str, Any] = {
        "kitsu_id": _kitsu_id(resource.id, "anime id"),
        "slug": _fitting(_text(attr("slug")), limits["slug"]),
        "title": _shortened(
            _text(attr("canonicalTitle")) or _first_text(titles, _TITLE_FALLBACK_LOCALES),
            limits["title"],
        ),
        "title_en": _shortened(_first_text(titles, ("en", "en_us")), limits["title_en"]),
        "title_native": _shortened(_first_text(titles, ("ja_jp",)), limits["title_native"]),
        "overview": _text(attr("description")) or _text(attr("synopsis")),
        "episode_count": _optional_count(attr("episodeCount"), "episodeCount"),
        "episode_duration": _episode_minutes(attr("episodeLength")),
        "airing_status": _choice(attr("status"), AIRING_STATUSES),
        "kitsu_score": _average_rating(attr("averageRating")),
        "kitsu_rank": _optional_count(attr("ratingRank"), "ratingRank"),
        "kitsu_popularity": _optional_count(attr("popularityRank"), "popularityRank"),
        "poster_url": _fitting(
            _first_text(attr("posterImage"), _POSTER_SIZES), limits["poster_url"]
        ),
        "backdrop_url": _fitting(
            _first_text(attr("coverImage"), _COVER_SIZES), limits["backdrop_url"]
        ),
        "subtype": _choice(subtype, ANIME_SUBTYPES),
        "nsfw": _flag(attr("nsfw"), "nsfw", default=nsfw_default),
        "start_date": parse_kitsu_date(attr("startDate")),
        "end_date": parse_kitsu_date(attr("endDate")),
        "kitsu_updated_at": parse_kitsu_datetime(attr("updatedAt")),
    }
    mappings = _loaded_mappings(resource)
    if mappings is not None:
        fields.update(external_ids(mappings))
    return fields


def _linked_anime_id(resource: Resource, name: str) -> tuple[bool, int | None]:
    """(linkage loaded, anime id or None) for one relationship of a library entry."""
    relationship = resource.relationships.get(name)
    if relationship is None or not relationship.loaded:
        return False, None
    linkage = relationship.data
    if linkage is None:
        return True, None
    if not isinstance(linkage, ResourceIdentifier):
        raise MappingError(f"A library entry's {name} relationship must be to-one.")
    if linkage.type != "anime":
        return True, None
    return True, _kitsu_id(linkage.id, f"{name} id")


# Kitsu links an entry's title twice, as `anime` and as polymorphic `media`; either may be
# included (docs/kitsu-api.md §3.2).
_ENTRY_ANIME_RELATIONSHIPS = ("anime", "media")


def _entry_anime_id(resource: Resource) -> int | None:
    loaded = False
    for name in _ENTRY_ANIME_RELATIONSHIPS:
        name_loaded, anime_id = _linked_anime_id(resource, name)
        if anime_id is not None:
            return anime_id
        loaded = loaded or name_loaded
    other_loaded = any(
        resource.relationships[name].loaded
        for name in ("manga", "drama")
        if name in resource.relationships
    )
    if loaded or other_loaded:
        return None
    raise MappingError(
        f"Library entry {resource.id} does not say which media it is for: "
        "request it with include=anime or include=media."
    )


def included_anime(entry: Resource) -> Resource | None:
    """The anime resource a library entry's payload included for it, if any."""
    for name in _ENTRY_ANIME_RELATIONSHIPS:
        related = entry.related(name)
        if isinstance(related, Resource) and related.type == "anime":
            return related
    return None


def library_entry_fields(resource: Resource) -> dict[str, Any]:
    """Revenge `LibraryEntry` fields from a Kitsu `libraryEntries` resource.

    `anime_kitsu_id` is None for an entry that is not for anime (manga, drama): skip those.
    """
    _require_type(resource, "libraryEntries")
    attr = resource.attributes.get  # Resource.attr without a call per attribute
    updated_at = parse_kitsu_datetime(attr("updatedAt"))
    if updated_at is None:
        raise MappingError(f"Library entry {resource.id} has no updatedAt.")
    notes = attr("notes")
    if notes is not None and not isinstance(notes, str):
        raise MappingError(f"notes must be text, got {notes!r}.")
    return {
        "kitsu_entry_id": _kitsu_id(resource.id, "library entry id"),
        "anime_kitsu_id": _entry_anime_id(resource),
        "status": status_from_kitsu(attr("status")),
        "progress": _count(attr("progress"), "progress"),
        # The deprecated string `rating` ("0.0" when unrated) is ignored: ratingTwenty is exact.
        "score": score_from_rating_twenty(attr("ratingTwenty")),
        "rewatching": _flag(attr("reconsuming"), "reconsuming"),
        "rewatch_count": _count(attr("reconsumeCount"), "reconsumeCount"),
        "notes": notes or "",
        "private": _flag(attr("private"), "private"),
        "started_at": parse_kitsu_datetime(attr("startedAt")),
        "finished_at": parse_kitsu_datetime(attr("finishedAt")),
        "progressed_at": parse_kitsu_datetime(attr("progressedAt")),
        "kitsu_updated_at": updated_at,
        "kitsu_created_at": parse_kitsu_datetime(attr("createdAt")),
    }


_AVATAR_SIZES = ("medium", "small", "large", "tiny", "original")
_URL_MAX = 1000


def avatar_url(avatar: Any) -> str:
    """One URL out of Kitsu's avatar object (sizes keyed by name), or "" when there is none."""
    if not isinstance(avatar, Mapping):
        return ""
    for size in _AVATAR_SIZES:
        url = avatar.get(size)
        if (
            isinstance(url, str)
            and url.startswith(("https://", "http://"))
            and len(url) <= _URL_MAX
        ):
            return url
    return ""


def kitsu_user_fields(resource: Resource) -> dict[str, str]:
    """`KitsuToken` profile fields from a Kitsu `users` resource (the linked account)."""
    _require_type(resource, "users")
    attr = resource.attributes.get
    return {
        "kitsu_user_id": str(resource.id),
        "kitsu_username": _text(attr("slug"))[:255],
        "kitsu_display_name": _text(attr("name"))[:255],
        "kitsu_avatar_url": avatar_url(attr("avatar")),
        "kitsu_rating_system": _text(attr("ratingSystem"))
        if attr("ratingSystem") in RATING_SYSTEMS
        else "",
    }


def kitsu_entry_attributes(
    *,
    status: str,
    progress: int,
    score: int | None,
    rewatching: bool,
    rewatch_count: int,
    notes: str | None = None,
    private: bool | None = None,
    started_at: datetime | date | None = None,
    finished_at: datetime | date | None = None,
    episode_count: int | None,
    progress_cap: int | None = None,
) -> dict[str, Any]:
    """The `attributes` of a library-entry create/update that Kitsu's validation accepts.

    Progress is capped at the episode count when known, else at `progress_cap` when given
    (Kitsu: "progress - cannot exceed length of media"). `score=None` sends ratingTwenty null,
    which clears the rating; `notes`, `private` and the dates are sent only when not None.
    """
    progress = _count(progress, "progress")
    cap = _optional_count(episode_count, "episode_count")
    if not cap:
        # An episode count of 0 is no count at all; capping at it would erase progress.
        cap = _optional_count(progress_cap, "progress_cap")
    if not isinstance(rewatching, bool):
        raise MappingError(f"rewatching must be true or false, got {rewatching!r}.")
    attributes: dict[str, Any] = {
        "status": status_to_kitsu(status),
        "progress": progress if cap is None else min(progress, cap),
        "ratingTwenty": rating_twenty_from_score(score),
        "reconsuming": rewatching,
        "reconsumeCount": min(_count(rewatch_count, "rewatch_count"), RECONSUME_COUNT_MAX),
    }
    if notes is not None:
        if not isinstance(notes, str):
            raise MappingError(f"notes must be text, got {notes!r}.")
        attributes["notes"] = notes
    if private is not None:
        attributes["private"] = _flag(private, "private")
    if started_at is not None:
        attributes["startedAt"] = format_kitsu_datetime(started_at)
    if finished_at is not None:
        attributes["finishedAt"] = format_kitsu_datetime(finished_at)
    return attributes
