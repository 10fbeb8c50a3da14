"""The sandbox's state: seeded data, OAuth state, traffic, faults; and Kitsu's write rules.

One re-entrant lock guards the data and its caches: library listings by query (each write
forgets its user's) and encoded catalog attributes. Change entries through the write methods
only, or cached listings go stale. Library-entry writes follow KS `LibraryEntry`: validations
first, then the before_save side effects (docs/kitsu-api.md §3.2).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from kitsu_sync.sandbox.config import KITSU_MEDIA_HOST, SandboxConfig
from kitsu_sync.sandbox.records import (
    DAY_MS,
    MAPPING_SITES,
    Anime,
    Category,
    Genre,
    LibraryEntry,
    Manga,
    Mapping,
    Media,
    User,
)
from kitsu_sync.sandbox.seed import SeededCredential, generate, seeded_credentials
from kitsu_sync.sandbox.tokens import TokenStore
from kitsu_sync.sandbox.traffic import FaultInjector, RequestLog


class ValidationFailed(Exception):
    """A write broke model validations: (model attribute, message) pairs, in Rails order."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field} - {message}" for field, message in problems))
        self.problems = problems


def media_visible(media: Media, viewer: User | None) -> bool:
    """KS AnimePolicy::Scope: R18 titles only for signed-in users with the SFW filter off."""
    return not media.nsfw or (viewer is not None and not viewer.sfw_filter)


def entry_visible(entry: LibraryEntry, viewer: User | None) -> bool:
    """KS LibraryEntry.visible_for: private entries for their owner, R18 ones as for media."""
    if entry.private and (viewer is None or viewer.id != entry.user_id):
        return False
    return not entry.nsfw or (viewer is not None and not viewer.sfw_filter)


# Bounds of the caches: listings (by count and by entries held) and encoded attributes.
LIBRARY_VIEW_LIMIT = 512
LIBRARY_VIEW_ENTRY_LIMIT = 2_000_000
ATTRIBUTE_JSON_LIMIT = 128 * 1024 * 1024


@dataclass
class LibraryView:
    """A library listing as /library-entries answers it, before pagination."""

    entries: list[LibraryEntry]
    status_counts: dict[str, int]
    user_ids: frozenset[int] | None = None


class SandboxStore:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.tokens = TokenStore(config.clock, config.access_token_lifetime)
        self.log = RequestLog(config.request_log_size)
        self.faults = FaultInjector(config.faults)
        self.latency_ms = config.latency_ms
        # What image URLs start with (see SandboxConfig.media_url and `serve_media_at`).
        self.media_host = config.media_url or KITSU_MEDIA_HOST
        # Encoded attributes of read-only records (anime, manga, mappings...), by (class, id).
        self.attribute_json: dict[tuple[type, int], bytes] = {}
        self.attribute_json_bytes = 0
        # Filtered, sorted library listings by query (see `library_view`), least recent first.
        self.library_views: OrderedDict[Hashable, LibraryView] = OrderedDict()
        self.library_view_size = 0
        self.load()

    # --- state -------------------------------------------------------------------------------

    def load(self) -> None:
        """(Re)generate the seeded data; OAuth state, traffic and faults are left alone."""
        data = generate(self.config)
        with self.lock:
            self.genres: list[Genre] = data.genres
            self.categories: list[Category] = data.categories
            self.anime: list[Anime] = data.anime
            self.manga: list[Manga] = data.manga
            self.users: list[User] = data.users
            self.entries: dict[int, LibraryEntry] = {entry.id: entry for entry in data.entries}
            self.entries_by_user: dict[int, list[LibraryEntry]] = {u.id: [] for u in data.users}
            for entry in data.entries:
                self.entries_by_user[entry.user_id].append(entry)
            self.next_entry_id = max(self.entries, default=35_000_000) + 1
            self.dirty = False
            self.attribute_json.clear()
            self.attribute_json_bytes = 0
            self.library_views.clear()
            self.library_view_size = 0

    def reset(
        self,
        *,
        data: bool = True,
        stats: bool = True,
        faults: bool = True,
        throttle: bool = True,
        tokens: bool = True,
        latency: bool = True,
    ) -> None:
        # Regenerating a big sandbox takes seconds, so only do it when a write changed the data.
        if data and self.dirty:
            self.load()
        if stats:
            self.log.clear()
        if faults:
            self.faults.set_rules(self.config.faults)
        if tokens:
            self.tokens.clear()
        elif throttle:
            self.tokens.clear_throttle()
        if latency:
            self.latency_ms = self.config.latency_ms

    def serve_media_at(self, origin: str) -> None:
        """Once served at `origin` (http://host:port), make a media_url path absolute on it."""
        media_url = self.config.media_url
        if media_url is None or not media_url.startswith("/"):
            return
        with self.lock:
            self.media_host = f"{origin}{media_url}"
            # Encoded catalog attributes hold image URLs.
            self.attribute_json.clear()
            self.attribute_json_bytes = 0

    def credentials(self) -> list[SeededCredential]:
        return seeded_credentials(self.config)

    def now_ms(self) -> int:
        return int(self.config.clock() * 1000)

    # --- lookups -----------------------------------------------------------------------------

    def anime_by_id(self, anime_id: int) -> Anime | None:
        return self.anime[anime_id - 1] if 1 <= anime_id <= len(self.anime) else None

    def manga_by_id(self, manga_id: int) -> Manga | None:
        return self.manga[manga_id - 1] if 1 <= manga_id <= len(self.manga) else None

    def media(self, kind: str, media_id: int) -> Media | None:
        if kind == "anime":
            return self.anime_by_id(media_id)
        if kind == "manga":
            return self.manga_by_id(media_id)
        return None

    def entry_media(self, entry: LibraryEntry) -> Media:
        media = self.media(entry.kind, entry.media_id)
        assert media is not None, "library entries always point at seeded media"
        return media

    def genre_by_id(self, genre_id: int) -> Genre | None:
        return self.genres[genre_id - 1] if 1 <= genre_id <= len(self.genres) else None

    def category_by_id(self, category_id: int) -> Category | None:
        if 1 <= category_id <= len(self.categories):
            return self.categories[category_id - 1]
        return None

    def user_by_id(self, user_id: int) -> User | None:
        index = user_id - 1000
        return self.users[index - 1] if 1 <= index <= len(self.users) else None

    def user_by_login(self, login: str) -> User | None:
        """KS User.find_for_auth: by email (case-insensitive) or by profile slug; never by name."""
        wanted = login.strip().lower()
        if not wanted:
            return None
        for user in self.users:
            if user.email.lower() == wanted or user.slug.lower() == wanted:
                return user
        return None

    def entry_by_id(self, entry_id: int) -> LibraryEntry | None:
        return self.entries.get(entry_id)

    def library(self, user_ids: list[int] | None) -> list[LibraryEntry]:
        """Entries of some users (all users for None), in id order."""
        if user_ids is None:
            return sorted(self.entries.values(), key=lambda e: e.id)
        found: list[LibraryEntry] = []
        for user_id in dict.fromkeys(user_ids):
            found.extend(self.entries_by_user.get(user_id, ()))
        if len(user_ids) > 1:
            found.sort(key=lambda e: e.id)
        return found

    def library_view(
        self, key: Hashable, user_ids: list[int] | None, compute: Callable[[], LibraryView]
    ) -> LibraryView:
        """The listing for `key`, computed once and kept until a write touches its users.

        `key` must capture everything the listing depends on besides the entries of
        `user_ids` (all users for None): viewer, filters and sort.
        """
        with self.lock:
            view = self.library_views.get(key)
            if view is not None:
                self.library_views.move_to_end(key)
                return view
            view = compute()
            view.user_ids = None if user_ids is None else frozenset(user_ids)
            self.library_views[key] = view
            self.library_view_size += len(view.entries)
            while self.library_views and (
                len(self.library_views) > LIBRARY_VIEW_LIMIT
                or self.library_view_size > LIBRARY_VIEW_ENTRY_LIMIT
            ):
                _, dropped = self.library_views.popitem(last=False)
                self.library_view_size -= len(dropped.entries)
            return view

    def library_changed(self, user_id: int) -> None:
        """Forget the listings that hold this user's entries (call with the lock held)."""
        stale = [
            key
            for key, view in self.library_views.items()
            if view.user_ids is None or user_id in view.user_ids
        ]
        for key in stale:
            self.library_view_size -= len(self.library_views.pop(key).entries)

    def cache_attribute_json(self, key: tuple[type, int], encoded: bytes) -> None:
        with self.lock:
            if self.attribute_json_bytes + len(encoded) > ATTRIBUTE_JSON_LIMIT:
                self.attribute_json.clear()
                self.attribute_json_bytes = 0
            self.attribute_json[key] = encoded
            self.attribute_json_bytes += len(encoded)

    def mapping_by_id(self, mapping_id: int) -> Mapping | None:
        anime = self.anime_by_id((mapping_id - 1) // len(MAPPING_SITES) + 1)
        if anime is None or mapping_id < 1:
            return None
        site = (mapping_id - 1) % len(MAPPING_SITES)
        return next((m for m in anime.mappings if m.site == site), None)

    def all_mappings(self) -> Iterator[Mapping]:
        for anime in self.anime:
            yield from anime.mappings

    def mappings_for(self, site: str | None, external_id: str) -> list[Mapping]:
        """Mappings with this external id (on one site, or any): found without an index,
        because seeded external ids are a function of the anime id."""
        found: list[Mapping] = []
        for site_index, site_name in enumerate(MAPPING_SITES):
            if site is not None and site != site_name:
                continue
            for anime_id in _anime_ids_for(site_index, external_id):
                anime = self.anime_by_id(anime_id)
                if anime is None or anime.landmark is not None:
                    continue
                found.extend(m for m in anime.mappings if m.site == site_index)
            for anime in (a for a in self.anime[:20] if a.landmark is not None):
                found.extend(
                    m
                    for m in anime.mappings
                    if m.site == site_index and m.external_id == external_id
                )
        found.sort(key=lambda m: m.id)
        return found

    # --- library writes ----------------------------------------------------------------------

    def create_entry(
        self, user: User, media: Media | None, changes: dict[str, Any]
    ) -> LibraryEntry:
        with self.lock:
            entry = LibraryEntry()
            entry.id = 0
            entry.user_id = user.id
            entry.kind = media.kind if media is not None else "anime"
            entry.media_id = media.id if media is not None else 0
            entry.nsfw = media.nsfw if media is not None else False
            entry.status = None
            entry.progress = 0
            entry.volumes_owned = 0
            entry.reconsuming = False
            entry.reconsume_count = 0
            entry.notes = None
            entry.private = False
            entry.reaction_skipped = "unskipped"
            entry.progressed_at = entry.started_at = entry.finished_at = None
            entry.rating_twenty = None
            entry.created_at = entry.updated_at = 0
            for name, value in changes.items():
                setattr(entry, name, value)
            duplicate = media is not None and any(
                e.kind == media.kind and e.media_id == media.id
                for e in self.entries_by_user.get(user.id, ())
            )
            self._validate(entry, media, duplicate=duplicate)
            assert media is not None
            now = self.now_ms()
            self._apply_side_effects(entry, None, 0, set(changes), media, now)
            entry.id = self.next_entry_id
            self.next_entry_id += 1
            entry.created_at = entry.updated_at = now
            self.entries[entry.id] = entry
            self.entries_by_user.setdefault(user.id, []).append(entry)
            self.library_changed(user.id)
            self.dirty = True
            return entry

    def update_entry(self, entry: LibraryEntry, changes: dict[str, Any]) -> LibraryEntry:
        with self.lock:
            media = self.entry_media(entry)
            draft = entry.copy()
            for name, value in changes.items():
                setattr(draft, name, value)
            self._validate(draft, media, duplicate=False)
            now = max(self.now_ms(), entry.updated_at + 1)
            self._apply_side_effects(draft, entry.status, entry.progress, set(changes), media, now)
            draft.updated_at = now
            for name in LibraryEntry.__slots__:
                setattr(entry, name, getattr(draft, name))
            self.library_changed(entry.user_id)
            self.dirty = True
            return entry

    def delete_entry(self, entry: LibraryEntry) -> None:
        with self.lock:
            self.entries.pop(entry.id, None)
            library = self.entries_by_user.get(entry.user_id, [])
            if entry in library:
                library.remove(entry)
            self.library_changed(entry.user_id)
            self.dirty = True

    def progress_cap(self, media: Media) -> tuple[int, str]:
        """The most progress Kitsu accepts for a title, and the message past it."""
        if media.unit_count is not None:
            return media.unit_count, "cannot exceed length of media"
        if media.start_day is None:
            return 100, "is rather unreasonably high"
        weeks = max((self.now_ms() // DAY_MS - media.start_day) // 7, 0)
        return max(weeks + 5, 50), "is rather unreasonably high"

    def _validate(self, entry: LibraryEntry, media: Media | None, *, duplicate: bool) -> None:
        """Raise ValidationFailed with every broken rule, in the order KS declares them."""
        problems = _presence_problems(entry, media, duplicate=duplicate)
        problems += _bounds_problems(entry)
        if entry.progress is not None and media is not None:
            problems += self._progress_problems(entry.progress, media)
        if problems:
            raise ValidationFailed(problems)

    def _progress_problems(self, progress: int, media: Media) -> list[tuple[str, str]]:
        """Progress past the title's cap, or below zero."""
        cap, message = self.progress_cap(media)
        if progress > cap:
            return [("progress", message)]
        if progress < 0:
            return [("progress", "must be greater than or equal to 0")]
        return []

    @staticmethod
    def _apply_side_effects(
        entry: LibraryEntry,
        old_status: str | None,
        old_progress: int,
        sent: set[str],
        media: Media,
        now: int,
    ) -> None:
        """KS LibraryEntry before_save, applied after validation as Rails does."""
        count = media.unit_count
        status_changed = entry.status != old_status
        progress_changed = entry.progress != old_progress
        if not status_changed:
            if count is not None and entry.progress == count:
                entry.status = "completed"
            elif progress_changed and entry.status == "planned":
                # (inferred, docs/kitsu-api.md §3.2) progress on a planned entry starts watching it.
                entry.status = "current"
            status_changed = entry.status != old_status
        if status_changed and entry.status == "completed" and count is not None:
            entry.progress = count
            progress_changed = entry.progress != old_progress
        if (status_changed or progress_changed) and "progressed_at" not in sent:
            entry.progressed_at = now
        if (
            status_changed
            and entry.status in ("current", "completed")
            and entry.started_at is None
            and "started_at" not in sent
        ):
            entry.started_at = now
        if status_changed and entry.status == "completed" and "finished_at" not in sent:
            entry.finished_at = now


def _presence_problems(
    entry: LibraryEntry, media: Media | None, *, duplicate: bool
) -> list[tuple[str, str]]:
    """A missing title, blank required attributes, and a second entry for the same title."""
    problems: list[tuple[str, str]] = []
    if media is None:
        problems.append(("media", "must exist"))
    if entry.status is None:
        problems.append(("status", "can't be blank"))
    if entry.progress is None:
        problems.append(("progress", "can't be blank"))
    if entry.reconsume_count is None:
        problems.append(("reconsume_count", "can't be blank"))
    if duplicate:
        problems.append(("anime_id", "has already been taken"))
    return problems


def _bounds_problems(entry: LibraryEntry) -> list[tuple[str, str]]:
    """A rating outside 2..20 (reported as `rating`) and too many rewatches."""
    problems: list[tuple[str, str]] = []
    if entry.rating_twenty is not None:
        if entry.rating_twenty < 2:
            problems.append(("rating", "must be greater than or equal to 2"))
        elif entry.rating_twenty > 20:
            problems.append(("rating", "must be less than or equal to 20"))
    if entry.reconsume_count is not None and entry.reconsume_count > 50:
        problems.append(("reconsume_count", "just... go outside"))
    return problems


def _anime_ids_for(site: int, external_id: str) -> list[int]:
    """Invert `records.external_id` for generated anime."""
    if not external_id.isdigit():
        return []
    value = int(external_id)
    if site == 0:
        return [(value - 2000) // 3] if value > 2000 and (value - 2000) % 3 == 0 else []
    if site == 1:
        return [value - 100_000] if value > 100_000 else []
    if site == 2:
        return [(value - 10) // 5] if value > 10 and (value - 10) % 5 == 0 else []
    if site == 3:
        return [2 * (value - 70_000), 2 * (value - 70_000) + 1] if value >= 70_000 else []
    return [value - 250_000] if value > 250_000 else []
