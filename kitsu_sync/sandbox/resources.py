"""JSON:API serialisation of sandbox records, shaped like KS resources under JR 0.9.

Keys are camelCase, types camelCase plural, ids strings, URL paths dasherised; every resource
has links.self, every relationship links.self and links.related, and `data` only when the
relationship was included. Attributes come in the server's order (docs/kitsu-api.md §3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kitsu_sync.sandbox.config import KITSU_MEDIA_HOST
from kitsu_sync.sandbox.query import RawJson, encode_json, jr_error
from kitsu_sync.sandbox.records import (
    STATUS_COUNT_KEYS,
    Anime,
    Category,
    Genre,
    LibraryEntry,
    Manga,
    Mapping,
    Media,
    User,
    deprecated_rating,
    format_average,
    format_date,
    format_timestamp,
)
from kitsu_sync.sandbox.store import SandboxStore, entry_visible, media_visible

MEDIA_HOST = KITSU_MEDIA_HOST
POSTER_SIZES = (("tiny", 110, 156), ("large", 550, 780), ("small", 284, 402), ("medium", 390, 554))
COVER_SIZES = (("tiny", 840, 200), ("large", 3360, 800), ("small", 1680, 400))
AVATAR_SIZES = (("tiny", 40, 40), ("large", 200, 200), ("small", 64, 64), ("medium", 100, 100))


@dataclass(frozen=True)
class ResourceKind:
    type: str
    path: str
    attributes: tuple[str, ...]
    relationships: tuple[str, ...]
    to_one: frozenset[str] = frozenset()


def _dash(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name)


MEDIA_ATTRIBUTES = (
    "createdAt",
    "updatedAt",
    "slug",
    "synopsis",
    "description",
    "coverImageTopOffset",
    "titles",
    "canonicalTitle",
    "abbreviatedTitles",
    "averageRating",
    "ratingFrequencies",
    "userCount",
    "favoritesCount",
    "startDate",
    "endDate",
    "nextRelease",
    "popularityRank",
    "ratingRank",
    "ageRating",
    "ageRatingGuide",
    "subtype",
    "status",
    "tba",
    "posterImage",
    "coverImage",
)
MEDIA_RELATIONSHIPS = (
    "genres",
    "categories",
    "castings",
    "installments",
    "mappings",
    "reviews",
    "mediaRelationships",
    "characters",
    "staff",
    "productions",
    "quotes",
)
USER_PUBLIC = (
    "createdAt",
    "updatedAt",
    "name",
    "pastNames",
    "slug",
    "about",
    "location",
    "waifuOrHusbando",
    "followersCount",
    "followingCount",
    "lifeSpentOnAnime",
    "birthday",
    "gender",
    "commentsCount",
    "favoritesCount",
    "likesGivenCount",
    "reviewsCount",
    "likesReceivedCount",
    "postsCount",
    "ratingsCount",
    "mediaReactionsCount",
    "proExpiresAt",
    "title",
    "profileCompleted",
    "feedCompleted",
    "website",
    "proTier",
)
USER_PRIVATE = (
    "email",
    "ratingSystem",
    "titleLanguagePreference",
    "sfwFilter",
    "sfwFilterPreference",
    "theme",
    "timeZone",
    "language",
    "country",
)

ANIME = ResourceKind(
    "anime",
    "anime",
    (
        *MEDIA_ATTRIBUTES,
        "episodeCount",
        "episodeLength",
        "totalLength",
        "youtubeVideoId",
        "showType",
        "nsfw",
    ),
    (
        *MEDIA_RELATIONSHIPS,
        "episodes",
        "streamingLinks",
        "animeProductions",
        "animeCharacters",
        "animeStaff",
    ),
)
MANGA = ResourceKind(
    "manga",
    "manga",
    (*MEDIA_ATTRIBUTES, "chapterCount", "volumeCount", "serialization", "mangaType"),
    (*MEDIA_RELATIONSHIPS, "chapters", "mangaCharacters", "mangaStaff"),
)
LIBRARY_ENTRIES = ResourceKind(
    "libraryEntries",
    "library-entries",
    (
        "createdAt",
        "updatedAt",
        "status",
        "progress",
        "volumesOwned",
        "reconsuming",
        "reconsumeCount",
        "notes",
        "private",
        "reactionSkipped",
        "progressedAt",
        "startedAt",
        "finishedAt",
        "rating",
        "ratingTwenty",
    ),
    ("user", "anime", "manga", "drama", "review", "mediaReaction", "media", "unit", "nextUnit"),
    frozenset(
        ("user", "anime", "manga", "drama", "review", "mediaReaction", "media", "unit", "nextUnit")
    ),
)
MAPPINGS = ResourceKind(
    "mappings",
    "mappings",
    ("createdAt", "updatedAt", "externalSite", "externalId"),
    ("item",),
    frozenset(("item",)),
)
GENRES = ResourceKind(
    "genres", "genres", ("createdAt", "updatedAt", "name", "slug", "description"), ()
)
CATEGORIES = ResourceKind(
    "categories",
    "categories",
    (
        "createdAt",
        "updatedAt",
        "title",
        "description",
        "totalMediaCount",
        "slug",
        "nsfw",
        "childCount",
    ),
    ("parent", "anime", "manga"),
    frozenset(("parent",)),
)
USERS = ResourceKind(
    "users",
    "users",
    (*USER_PUBLIC, *USER_PRIVATE, "avatar", "coverImage"),
    (
        "waifu",
        "pinnedPost",
        "followers",
        "following",
        "blocks",
        "linkedAccounts",
        "profileLinks",
        "userRoles",
        "libraryEntries",
        "favorites",
        "reviews",
        "stats",
        "notificationSettings",
        "oneSignalPlayers",
        "categoryFavorites",
        "quotes",
    ),
    frozenset(("waifu", "pinnedPost")),
)
KINDS = {k.type: k for k in (ANIME, MANGA, LIBRARY_ENTRIES, MAPPINGS, GENRES, CATEGORIES, USERS)}
# Accepted spellings of a type in `fields[...]` and request bodies.
TYPE_ALIASES = {
    "library-entries": "libraryEntries",
    "library_entries": "libraryEntries",
    **{k: k for k in KINDS},
}

READ_ONLY_TYPES = frozenset(("anime", "manga", "mappings", "genres", "categories"))
# Where a modelled relationship leads; unmodelled ones are valid but always empty.
TARGETS: dict[tuple[str, str], tuple[str, ...]] = {
    ("libraryEntries", "user"): ("users",),
    ("libraryEntries", "anime"): ("anime",),
    ("libraryEntries", "manga"): ("manga",),
    ("libraryEntries", "media"): ("anime", "manga"),
    ("anime", "genres"): ("genres",),
    ("anime", "categories"): ("categories",),
    ("anime", "mappings"): ("mappings",),
    ("manga", "genres"): ("genres",),
    ("manga", "categories"): ("categories",),
    ("manga", "mappings"): ("mappings",),
    ("mappings", "item"): ("anime", "manga"),
    ("categories", "parent"): ("categories",),
    ("users", "libraryEntries"): ("libraryEntries",),
}
RELATIONSHIP_LINKS = {
    kind.type: tuple((name, _dash(name)) for name in kind.relationships) for kind in KINDS.values()
}


def kind_of(record: Any) -> ResourceKind:
    if isinstance(record, Anime):
        return ANIME
    if isinstance(record, Manga):
        return MANGA
    if isinstance(record, LibraryEntry):
        return LIBRARY_ENTRIES
    if isinstance(record, Mapping):
        return MAPPINGS
    if isinstance(record, Genre):
        return GENRES
    if isinstance(record, Category):
        return CATEGORIES
    return USERS


def validate_include(tree: dict[str, Any], types: tuple[str, ...]) -> None:
    """400 code 112 for a relationship the resource does not have."""
    for name, subtree in tree.items():
        owners = [t for t in types if name in KINDS[t].relationships]
        if not owners:
            raise jr_error(
                400, "Invalid field", f"{name} is not a valid relationship of {types[0]}", 112
            )
        targets = tuple(
            dict.fromkeys(target for t in owners for target in TARGETS.get((t, name), ()))
        )
        if subtree and targets:
            validate_include(subtree, targets)


def validate_fields(type_name: str, names: set[str]) -> None:
    kind = KINDS.get(TYPE_ALIASES.get(type_name, type_name))
    if kind is None:
        raise jr_error(400, "Invalid resource", f"{type_name} is not a valid resource.", 101)
    for name in sorted(names):
        if name not in kind.attributes and name not in kind.relationships:
            raise jr_error(
                400, "Invalid field", f"{name} is not a valid field for {kind.type}.", 104
            )


def media_images(
    host: str, kind: str, media_id: int, digest: str | None, which: str, old_style: bool
) -> dict[str, Any] | None:
    """A posterImage or coverImage object (`which` is "poster" or "cover"); None without one."""
    if digest is None:
        return None
    sizes = POSTER_SIZES if which == "poster" else COVER_SIZES
    if old_style:
        base = f"{host}/{kind}/{which}_images/{media_id}"
        image = {size: f"{base}/{size}.jpg" for size, _, _ in sizes}
        image["original"] = f"{base}/original.jpg"
    else:
        base = f"{host}/{kind}/{media_id}/{which}_image"
        image = {size: f"{base}/{size}-{digest}.jpeg" for size, _, _ in sizes}
        image["original"] = f"{base}/{digest}.jpeg"
    image["meta"] = {
        "dimensions": {size: {"width": w, "height": h} for size, w, h in sizes},
    }
    return image


def avatar_images(host: str, user: User) -> dict[str, Any] | None:
    """A user's avatar object; only the demo account (user 1) has one."""
    if user.index != 1:
        return None
    base = f"{host}/users/avatars/{user.id}"
    return {
        **{size: f"{base}/{size}.jpeg" for size, _, _ in AVATAR_SIZES},
        "original": f"{base}/original.jpeg",
        "meta": {"dimensions": {size: {"width": w, "height": h} for size, w, h in AVATAR_SIZES}},
    }


def rating_frequencies(media: Media) -> dict[str, str]:
    """An hstore of string counts, "2" to "20", roughly matching averageRating."""
    if media.average_rating is None:
        total = media.noise % 49
        mean = 14.0
    else:
        total = max(int(media.user_count * 0.7), 50)
        mean = 2 + (media.average_rating / 100 - 4) * 20 / 95 * 0.9
    weights = [math.exp(-((k - mean) ** 2) / 18) for k in range(2, 21)]
    scale = total / sum(weights)
    jitter = media.noise
    counts = {}
    for k, weight in zip(range(2, 21), weights, strict=True):
        jitter = (jitter * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        counts[str(k)] = str(int(weight * scale * (0.9 + (jitter >> 40) / (1 << 24) * 0.2)))
    return counts


def media_attributes(media: Media, media_host: str = MEDIA_HOST) -> dict[str, Any]:
    """Attributes of an anime or manga, with image URLs on `media_host`."""
    old_style = media.landmark is not None
    description = media.description
    attributes: dict[str, Any] = {
        "createdAt": format_timestamp(media.created_at),
        "updatedAt": format_timestamp(media.updated_at),
        "slug": media.slug,
        "synopsis": description,
        "description": description,
        "coverImageTopOffset": media.cover_offset,
        "titles": media.titles,
        "canonicalTitle": media.canonical_title,
        "abbreviatedTitles": media.abbreviated_titles,
        "averageRating": format_average(media.average_rating),
        "ratingFrequencies": rating_frequencies(media),
        "userCount": media.user_count,
        "favoritesCount": media.favorites_count,
        "startDate": format_date(media.start_day),
        "endDate": format_date(media.end_day),
        "nextRelease": format_timestamp(getattr(media, "next_release", None)),
        "popularityRank": media.popularity_rank,
        "ratingRank": media.rating_rank,
        "ageRating": media.age_rating,
        "ageRatingGuide": media.age_rating_guide,
        "subtype": media.subtype,
        "status": media.status,
        "tba": media.tba,
        "posterImage": media_images(
            media_host, media.kind, media.id, media.poster_hash, "poster", old_style
        ),
        "coverImage": media_images(
            media_host, media.kind, media.id, media.cover_hash, "cover", old_style
        ),
    }
    if isinstance(media, Anime):
        attributes.update(
            episodeCount=media.episode_count,
            episodeLength=media.episode_length,
            totalLength=media.total_length,
            youtubeVideoId=media.youtube_video_id,
            showType=media.subtype,
            nsfw=media.nsfw,
        )
    elif isinstance(media, Manga):
        attributes.update(
            chapterCount=media.chapter_count,
            volumeCount=media.volume_count,
            serialization=media.serialization,
            mangaType=media.subtype,
        )
    return attributes


def entry_attributes(entry: LibraryEntry) -> dict[str, Any]:
    return {
        "createdAt": format_timestamp(entry.created_at),
        "updatedAt": format_timestamp(entry.updated_at),
        "status": entry.status,
        "progress": entry.progress,
        "volumesOwned": entry.volumes_owned,
        "reconsuming": entry.reconsuming,
        "reconsumeCount": entry.reconsume_count,
        "notes": entry.notes,
        "private": entry.private,
        "reactionSkipped": entry.reaction_skipped,
        "progressedAt": format_timestamp(entry.progressed_at),
        "startedAt": format_timestamp(entry.started_at),
        "finishedAt": format_timestamp(entry.finished_at),
        "rating": deprecated_rating(entry.rating_twenty),
        "ratingTwenty": entry.rating_twenty,
    }


def user_attributes(store: SandboxStore, user: User, viewer: User | None) -> dict[str, Any]:
    library = store.entries_by_user.get(user.id, ())
    minutes = 0
    rated = 0
    for entry in library:
        if entry.rating_twenty is not None:
            rated += 1
        if entry.kind == "anime":
            anime = store.anime_by_id(entry.media_id)
            if anime is not None and anime.episode_length:
                minutes += entry.progress * anime.episode_length
    attributes: dict[str, Any] = {
        "createdAt": format_timestamp(user.created_at),
        "updatedAt": format_timestamp(user.updated_at),
        "name": user.name,
        "pastNames": [],
        "slug": user.slug,
        "about": user.about,
        "location": user.location,
        "waifuOrHusbando": user.waifu_or_husbando,
        "followersCount": 3 * user.index,
        "followingCount": 2 * user.index,
        "lifeSpentOnAnime": minutes,
        "birthday": user.birthday,
        "gender": user.gender,
        "commentsCount": 0,
        "favoritesCount": 0,
        "likesGivenCount": 0,
        "reviewsCount": 0,
        "likesReceivedCount": 0,
        "postsCount": 0,
        "ratingsCount": rated,
        "mediaReactionsCount": 0,
        "proExpiresAt": None,
        "title": None,
        "profileCompleted": user.index == 1,
        "feedCompleted": user.index == 1,
        "website": None,
        "proTier": None,
    }
    if viewer is not None and viewer.id == user.id:
        attributes.update(
            email=user.email,
            ratingSystem=user.rating_system,
            titleLanguagePreference=user.title_language_preference,
            sfwFilter=user.sfw_filter,
            sfwFilterPreference=user.sfw_filter_preference,
            theme=user.theme,
            timeZone=user.time_zone,
            language=user.language,
            country=user.country,
        )
    attributes["avatar"] = avatar_images(store.media_host, user)
    attributes["coverImage"] = None
    return attributes


def attributes_of(store: SandboxStore, record: Any, viewer: User | None) -> dict[str, Any]:
    if isinstance(record, Media):
        return media_attributes(record, store.media_host)
    if isinstance(record, LibraryEntry):
        return entry_attributes(record)
    if isinstance(record, Mapping):
        return {
            "createdAt": format_timestamp(record.created_at),
            "updatedAt": format_timestamp(record.updated_at),
            "externalSite": record.external_site,
            "externalId": record.external_id,
        }
    if isinstance(record, Genre):
        return {
            "createdAt": format_timestamp(record.created_at),
            "updatedAt": format_timestamp(record.updated_at),
            "name": record.name,
            "slug": record.slug,
            "description": record.description,
        }
    if isinstance(record, Category):
        return {
            "createdAt": format_timestamp(record.created_at),
            "updatedAt": format_timestamp(record.updated_at),
            "title": record.title,
            "description": record.description,
            "totalMediaCount": record.total_media_count,
            "slug": record.slug,
            "nsfw": record.nsfw,
            "childCount": record.child_count,
        }
    return user_attributes(store, record, viewer)


def related(store: SandboxStore, record: Any, name: str, viewer: User | None) -> Any:
    """The record(s) behind a relationship: a list for to-many, a record or None for to-one."""
    kind = kind_of(record)
    if isinstance(record, LibraryEntry):
        return _entry_related(store, record, name)
    if isinstance(record, Media):
        return _media_related(store, record, name)
    if isinstance(record, Mapping):
        return record.anime
    if isinstance(record, Category) and name == "parent":
        return None if record.parent_id is None else store.category_by_id(record.parent_id)
    if isinstance(record, User) and name == "libraryEntries":
        return [e for e in store.entries_by_user.get(record.id, ()) if entry_visible(e, viewer)]
    return None if name in kind.to_one else []


def _entry_related(store: SandboxStore, entry: LibraryEntry, name: str) -> Any:
    """An entry's user or title (as `media` or by its kind); None for any other name."""
    if name == "user":
        return store.user_by_id(entry.user_id)
    if name in ("media", entry.kind):
        return store.entry_media(entry)
    return None


def _media_related(store: SandboxStore, media: Media, name: str) -> list[Any]:
    """A title's genres, categories or (anime only) mappings; empty for any other name."""
    if name == "genres":
        return [store.genres[i - 1] for i in media.genre_ids]
    if name == "categories":
        return [store.categories[i - 1] for i in media.category_ids]
    if name == "mappings" and isinstance(media, Anime):
        return media.mappings
    return []


def visible(record: Any, viewer: User | None) -> bool:
    if isinstance(record, Media):
        return media_visible(record, viewer)
    if isinstance(record, LibraryEntry):
        return entry_visible(record, viewer)
    return True


def identifier(record: Any) -> dict[str, str]:
    return {"type": kind_of(record).type, "id": str(record.id)}


def cached_attributes_json(store: SandboxStore, record: Any) -> bytes:
    """The encoded attributes of a read-only record (anime, manga, mapping, genre, category).

    The catalog never changes, and its attributes are most of a library page's bytes and time.
    """
    key = (type(record), record.id)
    cached = store.attribute_json.get(key)
    if cached is None:
        cached = encode_json(attributes_of(store, record, None))
        store.cache_attribute_json(key, cached)
    return cached


def _links_parts(name: str, dashed: str) -> tuple[bytes, ...]:
    """A relationship's links object, split where the resource URL goes (for `url.join`)."""
    return (
        f'"{name}":{{"links":{{"self":"'.encode(),
        f'/relationships/{dashed}","related":"'.encode(),
        f'/{dashed}"}}'.encode(),
    )


# Per type: each relationship's links parts, and all of them at once (no linkage, no fields).
LINKS_PARTS = {
    type_name: tuple((name, _links_parts(name, dashed)) for name, dashed in links)
    for type_name, links in RELATIONSHIP_LINKS.items()
}
ALL_LINKS_PARTS = {
    type_name: (b"{" + b",".join(b"\0".join(parts) + b"}" for _, parts in links) + b"}").split(
        b"\0"
    )
    for type_name, links in LINKS_PARTS.items()
}


class DocumentBuilder:
    """Builds the primary data of one response and collects its `included` resources.

    Resources come out encoded (`RawJson`): an included resource is encoded once the whole
    include tree is walked, with the linkage of every path that reached it.
    """

    def __init__(
        self,
        store: SandboxStore,
        base: str,
        viewer: User | None,
        fields: dict[str, set[str]] | None = None,
    ) -> None:
        self.store = store
        self.base = base
        self.viewer = viewer
        self.fields = fields or {}
        self.primary: set[tuple[str, str]] = set()
        # JR groups `included` by type, in the order each type was first met.
        self.included: dict[str, dict[str, tuple[Any, dict[str, Any]]]] = {}
        self._base_json = encode_json(base)[1:-1]

    def resource(self, record: Any, include: dict[str, Any] | None = None) -> RawJson:
        kind = kind_of(record)
        self.primary.add((kind.type, str(record.id)))
        linkage = self._expand(kind, record, include) if include else {}
        return self._encode(kind, record, linkage)

    def resources(self, records: list[Any], include: dict[str, Any] | None = None) -> list:
        for record in records:
            self.primary.add((kind_of(record).type, str(record.id)))
        return [self.resource(record, include) for record in records]

    def included_list(self) -> list[RawJson]:
        return [
            self._encode(KINDS[type_name], record, linkage)
            for type_name, by_id in self.included.items()
            for record, linkage in by_id.values()
        ]

    def document(self, data: Any, **extra: Any) -> dict[str, Any]:
        document: dict[str, Any] = {"data": data}
        included = self.included_list()
        if included:
            document["included"] = included
        document.update(extra)
        return document

    def _encode(self, kind: ResourceKind, record: Any, linkage: dict[str, Any]) -> RawJson:
        """`{"id","type","links","attributes","relationships"}`, as json.dumps would write it."""
        record_id = str(record.id).encode()
        url = b"%s/%s/%s" % (self._base_json, kind.path.encode(), record_id)
        wanted = self.fields.get(kind.type)
        if wanted is None and kind.type in READ_ONLY_TYPES:
            attributes = cached_attributes_json(self.store, record)
        else:
            values = attributes_of(self.store, record, self.viewer)
            if wanted is not None:
                values = {k: v for k, v in values.items() if k in wanted}
            attributes = encode_json(values)
        if wanted is None and not linkage:
            relationships = url.join(ALL_LINKS_PARTS[kind.type])
        else:
            members = []
            for name, parts in LINKS_PARTS[kind.type]:
                if wanted is not None and name not in wanted:
                    continue
                links = url.join(parts)
                if name in linkage:
                    members.append(links + b',"data":' + encode_json(linkage[name]) + b"}")
                else:
                    members.append(links + b"}")
            relationships = b"{" + b",".join(members) + b"}"
        return RawJson(
            b'{"id":"%s","type":"%s","links":{"self":"%s"},"attributes":%s,"relationships":%s}'
            % (record_id, kind.type.encode(), url, attributes, relationships)
        )

    def _expand(self, kind: ResourceKind, record: Any, include: dict[str, Any]) -> dict[str, Any]:
        """Include what `include` names below `record`; returns the linkage it gets."""
        linkage: dict[str, Any] = {}
        for name, subtree in include.items():
            if name not in kind.relationships:
                continue
            target = related(self.store, record, name, self.viewer)
            if isinstance(target, list):
                linkage[name] = [identifier(t) for t in target]
                for item in target:
                    self._include(item, subtree)
            else:
                linkage[name] = None if target is None else identifier(target)
                if target is not None:
                    self._include(target, subtree)
        return linkage

    def _include(self, record: Any, include: dict[str, Any]) -> None:
        if not visible(record, self.viewer):
            return
        kind = kind_of(record)
        key = str(record.id)
        if (kind.type, key) in self.primary:
            return
        by_id = self.included.setdefault(kind.type, {})
        found = by_id.get(key)
        if found is None:
            found = by_id[key] = (record, {})
        if include:
            found[1].update(self._expand(kind, record, include))


def status_counts(entries: list[LibraryEntry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    return {
        STATUS_COUNT_KEYS[status]: counts[status]
        for status in STATUS_COUNT_KEYS
        if status in counts
    }
