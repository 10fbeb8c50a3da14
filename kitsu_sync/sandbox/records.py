"""Compact in-memory records of the sandbox (`__slots__`, ints for times) and their formats.

Times are stored as integer milliseconds since the Unix epoch and dates as days since
1970-01-01, so that 200,000 library entries stay small; JSON is built per request.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, date, datetime

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DAY_MS = 86_400_000

LIBRARY_STATUSES = ("current", "planned", "completed", "on_hold", "dropped")
# Rails enum values of LibraryEntry#status: sorting by status sorts by these integers.
STATUS_ORDER = {"current": 1, "planned": 2, "completed": 3, "on_hold": 4, "dropped": 5}
STATUS_COUNT_KEYS = {
    "current": "current",
    "planned": "planned",
    "completed": "completed",
    "on_hold": "onHold",
    "dropped": "dropped",
}
REACTION_SKIPPED = ("unskipped", "skipped", "ignored")

MAPPING_SITES = ("myanimelist/anime", "anilist/anime", "anidb", "thetvdb/series", "thetvdb")


def format_timestamp(ms: int | None) -> str | None:
    """`2013-02-20T16:00:13.609Z`, as Kitsu's BaseResource formats every timestamp."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def format_date(day: int | None) -> str | None:
    if day is None:
        return None
    return date.fromordinal(EPOCH_ORDINAL + day).isoformat()


def parse_time(value: str) -> int | None:
    """Milliseconds for an ISO date or timestamp (naive means UTC); None if it is not one."""
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def deprecated_rating(rating_twenty: int | None) -> str:
    """The deprecated `rating` string: floor(r20 / 2) / 2, "0.0" when unrated."""
    if rating_twenty is None:
        return "0.0"
    return f"{(rating_twenty // 2) / 2:.1f}"


def format_average(hundredths: int | None) -> str | None:
    """averageRating is a decimal(5,2) column that Kitsu serialises as a string."""
    if hundredths is None:
        return None
    return f"{hundredths // 100}.{hundredths % 100:02d}"


class Genre:
    __slots__ = ("created_at", "description", "id", "name", "slug", "updated_at")

    def __init__(self, id: int, name: str, slug: str, created_at: int, updated_at: int) -> None:
        self.id = id
        self.name = name
        self.slug = slug
        self.description: str | None = None
        self.created_at = created_at
        self.updated_at = updated_at


class Category:
    __slots__ = (
        "child_count",
        "created_at",
        "description",
        "id",
        "nsfw",
        "parent_id",
        "slug",
        "title",
        "total_media_count",
        "updated_at",
    )

    def __init__(
        self,
        id: int,
        title: str,
        slug: str,
        description: str,
        nsfw: bool,
        parent_id: int | None,
        created_at: int,
    ) -> None:
        self.id = id
        self.title = title
        self.slug = slug
        self.description = description
        self.nsfw = nsfw
        self.parent_id = parent_id
        self.child_count = 0
        self.total_media_count = 0
        self.created_at = created_at
        self.updated_at = created_at


# Media.title_flags bits: which locales a title has, and which one is canonical.
(
    TITLE_EN_MISSING,
    TITLE_EN_NULL,
    TITLE_EN_US,
    TITLE_ZH_CN,
    TITLE_CANONICAL_EN,
    TITLE_ABBREVIATION,
) = 1, 2, 4, 8, 16, 32


def _hex(noise: int, salt: bytes, length: int = 32) -> str:
    return hashlib.blake2b(noise.to_bytes(8, "big") + salt, digest_size=length // 2).hexdigest()


class Media:
    """Anime or manga: the fields both kinds share.

    Titles are kept as three shared strings plus flag bits, and the description, slug, image
    hashes and video id are derived on demand, so that a 100,000-title catalog stays small.
    `landmark` holds the fixed values of the few real titles seeded at their real ids.
    """

    __slots__ = (
        "age_rating",
        "age_rating_guide",
        "average_rating",
        "category_ids",
        "cover_offset",
        "created_at",
        "end_day",
        "english",
        "genre_ids",
        "id",
        "image_flags",
        "landmark",
        "native",
        "noise",
        "popularity_rank",
        "rating_rank",
        "romaji",
        "start_day",
        "status",
        "subtype",
        "tba",
        "title_flags",
        "updated_at",
        "user_count",
    )
    kind = "media"

    @property
    def nsfw(self) -> bool:
        return self.age_rating == "R18"

    @property
    def titles(self) -> dict[str, str | None]:
        if self.landmark is not None:
            return dict(self.landmark["titles"])
        flags = self.title_flags
        titles: dict[str, str | None] = {}
        if flags & TITLE_EN_NULL:
            titles["en"] = None
        elif not flags & TITLE_EN_MISSING:
            titles["en"] = self.english
        titles["en_jp"] = self.romaji
        titles["ja_jp"] = self.native
        if flags & TITLE_EN_US:
            titles["en_us"] = self.english
        if flags & TITLE_ZH_CN:
            titles["zh_cn"] = self.native
        return titles

    @property
    def canonical_title(self) -> str:
        if self.landmark is not None:
            return self.landmark["canonical"]
        return self.english if self.title_flags & TITLE_CANONICAL_EN else self.romaji

    @property
    def abbreviated_titles(self) -> list[str]:
        if self.landmark is not None:
            return list(self.landmark["abbreviated"])
        return [self.romaji.split()[0].upper()] if self.title_flags & TITLE_ABBREVIATION else []

    @property
    def slug(self) -> str:
        if self.landmark is not None:
            return self.landmark["slug"]
        return f"{slugify(self.canonical_title)}-{self.kind_slug}{self.id}"

    @property
    def kind_slug(self) -> str:
        return "" if self.kind == "anime" else f"{self.kind}-"

    @property
    def description(self) -> str:
        if self.landmark is not None:
            return self.landmark["description"]
        noun = self.english.split()[-1].lower() if self.english else "story"
        return (
            f"{self.canonical_title}: a {self.subtype} about {noun}s, and what they leave behind."
        )

    @property
    def favorites_count(self) -> int:
        if self.landmark is not None:
            return self.landmark["favorites"]
        return self.user_count // 30

    @property
    def poster_hash(self) -> str | None:
        return None if not self.image_flags & 1 else _hex(self.noise, b"poster")

    @property
    def cover_hash(self) -> str | None:
        return None if not self.image_flags & 2 else _hex(self.noise, b"cover")

    def search_text(self) -> str:
        parts = [t for t in self.titles.values() if t]
        return " ".join([*parts, *self.abbreviated_titles, self.description]).casefold()


class Anime(Media):
    __slots__ = ("episode_count", "episode_length", "mapping_sites", "next_release")
    kind = "anime"

    @property
    def unit_count(self) -> int | None:
        return self.episode_count

    @property
    def youtube_video_id(self) -> str | None:
        if self.landmark is not None:
            return self.landmark["youtube"]
        if self.noise % 2:
            return None
        digest = _hex(self.noise, b"youtube")
        return "".join(YOUTUBE_ALPHABET[int(digest[i : i + 2], 16) % 64] for i in range(0, 22, 2))

    @property
    def mappings(self) -> list[Mapping]:
        if self.landmark is not None:
            return [Mapping(self, site, ext) for site, ext in self.landmark["mappings"]]
        return [
            Mapping(self, site, external_id(self.id, site))
            for site in range(len(MAPPING_SITES))
            if self.mapping_sites & (1 << site)
        ]

    @property
    def total_length(self) -> int | None:
        if self.episode_count is None or self.episode_length is None:
            return None
        return self.episode_count * self.episode_length


class Manga(Media):
    __slots__ = ("chapter_count", "serialization", "volume_count")
    kind = "manga"

    @property
    def unit_count(self) -> int | None:
        return self.chapter_count


YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def external_id(anime_id: int, site: int) -> str:
    """The seeded id of a generated anime on another site (landmarks carry their real ones)."""
    if site == 0:
        return str(2000 + anime_id * 3)
    if site == 1:
        return str(100_000 + anime_id)
    if site == 2:
        return str(10 + anime_id * 5)
    if site == 3:
        # One TheTVDB series spans several Kitsu entries (one per season): pairs share an id.
        return str(70_000 + anime_id // 2)
    return str(250_000 + anime_id)


def slugify(text: str) -> str:
    folded = text.lower()
    for source, target in (("ō", "o"), ("ū", "u"), ("ā", "a"), ("ï", "i"), ("é", "e")):
        folded = folded.replace(source, target)
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in folded).split()
    return "-".join(words)


class Mapping:
    """A cross-site id. Mappings are derived from their anime, never stored on their own."""

    __slots__ = ("anime", "external_id", "site")

    def __init__(self, anime: Anime, site: int, external_id: str) -> None:
        self.anime = anime
        self.site = site
        self.external_id = external_id

    @property
    def id(self) -> int:
        # Dense ids that decode back to (anime, site) without an index.
        return (self.anime.id - 1) * len(MAPPING_SITES) + self.site + 1

    @property
    def external_site(self) -> str:
        return MAPPING_SITES[self.site]

    @property
    def created_at(self) -> int:
        return self.anime.created_at + (self.site + 1) * 60_000

    @property
    def updated_at(self) -> int:
        return self.created_at


class User:
    __slots__ = (
        "about",
        "birthday",
        "country",
        "created_at",
        "email",
        "gender",
        "id",
        "index",
        "language",
        "life_spent_on_anime",
        "location",
        "name",
        "password",
        "rating_system",
        "sfw_filter",
        "slug",
        "theme",
        "time_zone",
        "title_language_preference",
        "updated_at",
        "waifu_or_husbando",
    )

    @property
    def sfw_filter_preference(self) -> str:
        return "sfw" if self.sfw_filter else "nsfw_everywhere"


class LibraryEntry:
    __slots__ = (
        "created_at",
        "finished_at",
        "id",
        "kind",
        "media_id",
        "notes",
        "nsfw",
        "private",
        "progress",
        "progressed_at",
        "rating_twenty",
        "reaction_skipped",
        "reconsume_count",
        "reconsuming",
        "started_at",
        "status",
        "updated_at",
        "user_id",
        "volumes_owned",
    )

    # The fields a write may change, in the order LibraryEntry#attributes lists them.
    WRITABLE = (
        "status",
        "progress",
        "volumes_owned",
        "reconsuming",
        "reconsume_count",
        "notes",
        "private",
        "reaction_skipped",
        "progressed_at",
        "started_at",
        "finished_at",
        "rating_twenty",
    )

    def copy(self) -> LibraryEntry:
        clone = LibraryEntry.__new__(LibraryEntry)
        for name in LibraryEntry.__slots__:
            setattr(clone, name, getattr(self, name))
        return clone
