"""Revenge's side of Kitsu: linked accounts, sync state and history, anime and list entries."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from kitsu_sync.encryption import EncryptedTextField
from kitsu_sync.merge import SyncDirection

# The allauth provider id of Kitsu accounts (SocialAccount.provider; the provider app's `id`).
KITSU_PROVIDER_ID = "kitsu"


class AuthFlow(models.TextChoices):
    PASSWORD = "password", "Password grant"
    AUTHORIZATION_CODE = "authorization_code", "Authorization code"


class KitsuTokenQuerySet(models.QuerySet):
    def due_for_sync(self, now: datetime) -> KitsuTokenQuerySet:
        """Links that can sync and whose next sync time has passed (or was never set)."""
        state = "user__kitsu_sync_state__"
        return self.filter(needs_relink=False).filter(
            Q(**{f"{state}isnull": True})
            | Q(**{f"{state}next_sync_at__isnull": True})
            | Q(**{f"{state}next_sync_at__lte": now})
        )


class KitsuToken(models.Model):
    """A user's link to Kitsu. Both tokens are Fernet-encrypted in the database."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_token"
    )
    kitsu_user_id = models.CharField(max_length=32, db_index=True)
    kitsu_username = models.CharField(max_length=255, blank=True)
    kitsu_display_name = models.CharField(max_length=255, blank=True)
    kitsu_avatar_url = models.URLField(max_length=1000, blank=True)
    # How the user rates on Kitsu (simple, regular, advanced; "" unknown): scores are shown
    # and taken that way (mapping.score_choices).
    kitsu_rating_system = models.CharField(max_length=10, blank=True)
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(blank=True)
    token_expires_at = models.DateTimeField()
    auth_flow = models.CharField(max_length=32, choices=AuthFlow.choices)
    # Set when Kitsu rejects the refresh token: syncing stops until the user links again.
    needs_relink = models.BooleanField(default=False)
    relink_reason = models.CharField(max_length=500, blank=True)
    # Compare-and-swap claim: one process at a time refreshes (Kitsu refresh tokens are single-use).
    refresh_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = KitsuTokenQuerySet.as_manager()

    class Meta:
        db_table = "user_kitsu_tokens"
        verbose_name = "Kitsu link"

    def __str__(self) -> str:
        return f"Kitsu link of {self.user} as {self.kitsu_username or self.kitsu_user_id}"

    def __repr__(self) -> str:
        return f"<KitsuToken user_id={self.user_id} kitsu_user_id={self.kitsu_user_id}>"


class SyncStatus(models.TextChoices):
    NEVER = "never", "Never synced"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Succeeded"
    PARTIAL = "partial", "Finished with errors"
    FAILED = "failed", "Failed"
    NEEDS_RELINK = "needs_relink", "Needs re-link"


class KitsuSyncState(models.Model):
    """One row per user: where their sync stands, and what went wrong last."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_sync_state"
    )
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_status = models.CharField(
        max_length=20, choices=SyncStatus.choices, default=SyncStatus.NEVER
    )
    entries_synced = models.PositiveIntegerField(default=0)
    # [records.ErrorRecord, ...]: what went wrong in the last sync
    errors = models.JSONField(default=list, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    # The newest Kitsu updatedAt imported: the next incremental run asks for filter[since].
    cursor_updated_at = models.DateTimeField(null=True, blank=True)
    # Compare-and-swap claim: one sync per user at a time, across all workers.
    sync_claimed_until = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "kitsu_sync_state"
        verbose_name = "Kitsu sync state"

    def __str__(self) -> str:
        return f"Kitsu sync of {self.user}: {self.get_last_sync_status_display()}"


class Anime(models.Model):
    """Anime metadata from Kitsu, with the ids other sites know it by."""

    kitsu_id = models.BigIntegerField(unique=True)
    slug = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=500, blank=True)
    title_en = models.CharField(max_length=500, blank=True)
    title_native = models.CharField(max_length=500, blank=True)
    overview = models.TextField(blank=True)
    episode_count = models.PositiveIntegerField(null=True, blank=True)
    episode_duration = models.PositiveIntegerField(null=True, blank=True, help_text="Minutes")
    airing_status = models.CharField(max_length=20, blank=True)
    kitsu_score = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="0..100"
    )
    kitsu_rank = models.PositiveIntegerField(null=True, blank=True)
    kitsu_popularity = models.PositiveIntegerField(null=True, blank=True)
    poster_url = models.URLField(max_length=1000, blank=True)
    backdrop_url = models.URLField(max_length=1000, blank=True)
    subtype = models.CharField(max_length=20, blank=True)
    nsfw = models.BooleanField(default=False)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    kitsu_updated_at = models.DateTimeField(null=True, blank=True)
    # When Kitsu's details (with the external ids) were last read for the anime page.
    details_fetched_at = models.DateTimeField(null=True, blank=True)
    mal_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    anilist_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    anidb_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    tvdb_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "anime"

    def __str__(self) -> str:
        return self.title or f"Kitsu anime {self.kitsu_id}"


class WatchStatus(models.TextChoices):
    WATCHING = "watching", "Watching"
    COMPLETED = "completed", "Completed"
    ON_HOLD = "on_hold", "On hold"
    DROPPED = "dropped", "Dropped"
    PLAN_TO_WATCH = "plan_to_watch", "Plan to watch"


class LibraryEntry(models.Model):
    """One anime in one user's Revenge list, and what the merge needs to tell sides apart."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_library"
    )
    anime = models.ForeignKey(Anime, on_delete=models.PROTECT, related_name="library_entries")
    status = models.CharField(max_length=20, choices=WatchStatus.choices)
    progress = models.PositiveIntegerField(default=0)
    score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="0..100")
    rewatching = models.BooleanField(default=False)
    rewatch_count = models.PositiveSmallIntegerField(default=0)
    notes = models.TextField(blank=True)
    private = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progressed_at = models.DateTimeField(null=True, blank=True)
    kitsu_entry_id = models.BigIntegerField(null=True, blank=True)
    kitsu_updated_at = models.DateTimeField(null=True, blank=True)
    # The synced fields' values after the last successful sync: the base of the three-way merge.
    synced_values = models.JSONField(null=True, blank=True)
    # When a Revenge-side change was last made (the merge's "newer change wins" rule).
    local_updated_at = models.DateTimeField(null=True, blank=True)
    # When Kitsu last took a write of this entry from Revenge.
    pushed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "library entries"
        constraints = [
            models.UniqueConstraint(fields=["user", "anime"], name="one_entry_per_user_and_anime"),
            models.UniqueConstraint(
                fields=["kitsu_entry_id"],
                condition=Q(kitsu_entry_id__isnull=False),
                name="unique_kitsu_entry_id",
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__lte=100), name="score_0_to_100"
            ),
        ]
        indexes = [models.Index(fields=["user", "status"])]

    def __str__(self) -> str:
        return f"{self.user}: {self.anime} ({self.get_status_display()}, {self.progress})"


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Sync now"
    ADMIN = "admin", "Admin"
    LINK = "link", "First sync after linking"
    COMMAND = "command", "Command line"


class SyncOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCESS = "success", "Succeeded"
    PARTIAL = "partial", "Finished with errors"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class SyncRun(models.Model):
    """One sync attempt, kept as history."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_sync_runs"
    )
    trigger = models.CharField(max_length=20, choices=SyncTrigger.choices)
    direction = models.CharField(
        max_length=20, choices=[(direction.value, direction.label) for direction in SyncDirection]
    )
    full = models.BooleanField(default=False)
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(
        max_length=20, choices=SyncOutcome.choices, default=SyncOutcome.RUNNING
    )
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    pushed = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    requests_made = models.PositiveIntegerField(default=0)
    # [records.ErrorRecord, ...]
    errors = models.JSONField(default=list, blank=True)
    # [records.ConflictRecord, ...]
    conflict_log = models.JSONField(default=list, blank=True)
    # Dry runs: what would change on each side ([plan.PlannedChange as JSON, ...]).
    planned_changes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "-started_at"])]

    def __str__(self) -> str:
        return f"Sync of {self.user} at {self.started_at:%Y-%m-%d %H:%M} ({self.outcome})"


class Heartbeat(models.Model):
    """When a periodic job last completed, by job name (the health endpoint reads beat's)."""

    name = models.CharField(max_length=100, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"


# --- which Kitsu anime a media server's show is ---------------------------------------------


class MappingSource(models.TextChoices):
    ANIME_LISTS = "anime-lists", "Anime-Lists (TheTVDB/TMDB seasons and episodes)"
    FRIBB = "fribb", "Fribb anime-lists (ids across sites)"
    KITSU = "kitsu", "Kitsu's /mappings (cached answers)"


# The sites a mapping record can be looked up by (MappingKey.site).
MAPPING_SITES = ("anidb", "kitsu", "mal", "anilist", "tvdb", "tmdb_tv", "tmdb_movie", "imdb")


class MappingDataset(models.Model):
    """A community dataset as last loaded: where from, how old, how big, what went wrong."""

    source = models.CharField(max_length=20, choices=MappingSource.choices, unique=True)
    url = models.URLField(max_length=1000, blank=True)
    loaded_at = models.DateTimeField(null=True, blank=True)
    # The file's own date: the server's Last-Modified, or a local file's modification time.
    published_at = models.DateTimeField(null=True, blank=True)
    records = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Why the last attempt failed ("" when it succeeded); the loaded data stays as it was.
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.get_source_display()}: {self.records} records"


class MappingRecord(models.Model):
    """One record of a dataset (an AniDB anime), or one cached answer of Kitsu's /mappings."""

    source = models.CharField(max_length=20, choices=MappingSource.choices)
    anidb_id = models.BigIntegerField(null=True, blank=True)
    # The record as `kitsu_sync.datasets` reads it (`record_json`); for Kitsu's answers
    # {"site": ..., "external_id": ..., "kitsu_id": id or null}.
    data = models.JSONField()
    fetched_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["source", "anidb_id"])]

    def __str__(self) -> str:
        return f"{self.source} record {self.pk} (AniDB {self.anidb_id})"


class MappingKey(models.Model):
    """An id a mapping record answers to: one row per (site, id)."""

    record = models.ForeignKey(MappingRecord, on_delete=models.CASCADE, related_name="keys")
    site = models.CharField(max_length=20)
    value = models.CharField(max_length=40)

    class Meta:
        indexes = [models.Index(fields=["site", "value"])]

    def __str__(self) -> str:
        return f"{self.site} {self.value}"


class MediaOverride(models.Model):
    """A user's own answer for a show: "this series (season) is that Kitsu anime, with this
    episode offset", or "ignore this series". It beats every other source."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_overrides"
    )
    site = models.CharField(max_length=20)  # one of MAPPING_SITES
    external_id = models.CharField(max_length=200)  # an id, or a normalised title
    # None: every season of the series.
    season = models.PositiveIntegerField(null=True, blank=True)
    kitsu_id = models.BigIntegerField(null=True, blank=True)
    # Added to the media server's episode number to get Kitsu's.
    episode_offset = models.IntegerField(default=0)
    ignore = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "site", "external_id", "season"],
                condition=Q(season__isnull=False),
                name="one_override_per_season",
            ),
            models.UniqueConstraint(
                fields=["user", "site", "external_id"],
                condition=Q(season__isnull=True),
                name="one_override_per_series",
            ),
            models.CheckConstraint(
                condition=Q(ignore=True) | Q(kitsu_id__isnull=False),
                name="override_names_an_anime_or_ignores",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.site} {self.external_id}" + (
            f" season {self.season}" if self.season is not None else ""
        )
        return f"{where}: ignored" if self.ignore else f"{where}: Kitsu {self.kitsu_id}"


class MediaServerKind(models.TextChoices):
    JELLYFIN = "jellyfin", "Jellyfin"
    EMBY = "emby", "Emby"
    PLEX = "plex", "Plex"


def validate_server_url(value: str) -> None:
    """A server's base address: http(s), a host, perhaps a path (behind a reverse proxy), and
    nothing that would change the requests Revenge builds on it (a query, a fragment, a user
    and password)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            "Enter the server's address with http:// or https://, such as "
            "http://192.168.1.20:8096 or https://jellyfin.example.org."
        )
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValidationError("The address is the server's base address, without ? or #.")
    if parts.username or parts.password:
        raise ValidationError(
            "Leave the user name and password out of the address: the API key is enough."
        )


class MediaServer(models.Model):
    """A media server Revenge may ask for a show's ids (only those), with an API key."""

    # None: the operator's server, used for every user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="kitsu_media_servers",
    )
    kind = models.CharField(max_length=20, choices=MediaServerKind.choices)
    name = models.CharField(max_length=100)
    # http(s)://host[:port][/path]; a single-label host (http://jellyfin:8096, a container's
    # name) is as good as any, which Django's URL validator would refuse.
    url = models.CharField(max_length=500, validators=[validate_server_url])
    api_key = EncryptedTextField(help_text="Jellyfin/Emby API key or Plex token; stored encrypted.")
    # Jellyfin/Emby: the user whose view of the library item lookups use (API keys have none).
    server_user_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"

    def __repr__(self) -> str:
        return f"<MediaServer {self.kind} {self.url}>"


# --- what Revenge sends to Kitsu, and who may tell it -------------------------------------------


class ApiKey(models.Model):
    """A key a script or a media server uses to act for its user, stored only as a hash.

    The key is `rvk_<prefix>_<secret>`: `prefix` finds the row, the SHA-256 of the whole key
    proves it (a random 32-byte secret needs no slow password hash; docs/api.md)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64)
    # The media-server user names this key may act for (empty: any user of that server).
    server_users = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (rvk_{self.prefix}_…)"


class OutboxAction(models.TextChoices):
    WRITE = "write", "Send the entry"
    DELETE = "delete", "Delete the entry on Kitsu"


class KitsuOutbox(models.Model):
    """A change bound for Kitsu, written in the transaction that made it: nothing is lost when
    Kitsu, Redis or the worker is down; a task drains the rows, with retries and backoff.

    One row per user and anime: later changes to the same entry ride on the row already there
    (the write sends the entry as it is then)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_outbox"
    )
    anime = models.ForeignKey(Anime, on_delete=models.CASCADE, related_name="+")
    entry = models.ForeignKey(
        LibraryEntry, on_delete=models.SET_NULL, null=True, blank=True, related_name="outbox"
    )
    action = models.CharField(max_length=10, choices=OutboxAction.choices)
    # For a delete: the Kitsu entry to delete (the local entry is gone).
    kitsu_entry_id = models.BigIntegerField(null=True, blank=True)
    queued_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    # Kitsu refused it for good (422): kept, with why, until the user retries or changes it.
    failed = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "change bound for Kitsu"
        verbose_name_plural = "changes bound for Kitsu"
        constraints = [
            models.UniqueConstraint(fields=["user", "anime"], name="one_outbox_row_per_entry")
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.anime} for {self.user}"


class WatchReport(models.Model):
    """An episode a media server (or a script) said a user watched, as counted: the same
    episode reported again soon after (stop and mark-played, a retry, a second server) is
    recognised by it and counts once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_watch_reports"
    )
    anime = models.ForeignKey(Anime, on_delete=models.CASCADE, related_name="+")
    episode = models.PositiveIntegerField()
    source = models.CharField(max_length=20)  # api, jellyfin, plex, emby
    reported_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "anime", "episode", "-reported_at"])]

    def __str__(self) -> str:
        return f"{self.user} watched episode {self.episode} of {self.anime}"


class IdempotentRequest(models.Model):
    """The answer given to a request sent with an Idempotency-Key, given again to a retry."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="one_answer_per_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.key}"


class UnmatchedStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for a match"
    MATCHED = "matched", "Matched"
    IGNORED = "ignored", "Ignored"


class UnmatchedItem(models.Model):
    """A show (one season of it) a media server reported watching that no source resolved:
    kept with what the server sent until the user matches it to a Kitsu anime or ignores it;
    the episodes waiting are replayed then."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_unmatched"
    )
    source = models.CharField(max_length=20)  # jellyfin, plex, emby, api
    # The id the show is remembered by (the override a match creates uses it).
    site = models.CharField(max_length=20)
    external_id = models.CharField(max_length=200)
    season = models.PositiveIntegerField(null=True, blank=True)
    title = models.CharField(max_length=500, blank=True)
    # What the server sent, for the person deciding: ids, names, numbers.
    details = models.JSONField(default=dict)
    reason = models.TextField(blank=True)
    candidates = models.JSONField(default=list, blank=True)
    # [{"episode": n, "at": iso}, ...]: the episodes reported while unmatched, to replay.
    episodes = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=10, choices=UnmatchedStatus.choices, default=UnmatchedStatus.WAITING
    )
    # Set when a passing failure (Kitsu or the media server down) left it unmatched: it is
    # tried again then, without anyone's help.
    retry_after = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    reports = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "site", "external_id", "season"],
                condition=Q(season__isnull=False),
                name="one_unmatched_item_per_season",
            ),
            models.UniqueConstraint(
                fields=["user", "site", "external_id"],
                condition=Q(season__isnull=True),
                name="one_unmatched_item_per_show",
            ),
        ]
        indexes = [models.Index(fields=["user", "status", "-last_seen"])]

    def __str__(self) -> str:
        season = f" season {self.season}" if self.season is not None else ""
        return f"{self.title or self.external_id}{season} ({self.get_status_display()})"


class CatalogKind(models.TextChoices):
    SEARCH = "search", "Search"
    TRENDING = "trending", "Trending"
    SEASON = "season", "Season"


class CatalogListing(models.Model):
    """One answer of Kitsu's catalogue (a title search, trending, a season), kept for a while
    so that a page view does not cost a Kitsu request each time; the anime are `Anime` rows."""

    kind = models.CharField(max_length=10, choices=CatalogKind.choices)
    key = models.CharField(max_length=200)  # the normalised query, "", or "2026-fall"
    kitsu_ids = models.JSONField(default=list)  # in Kitsu's order
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="one_catalog_listing_per_query")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.key}".strip()


# --- telling people what needs them -------------------------------------------------------------


class NotificationSettings(models.Model):
    """Where a user's notices are sent besides the dashboard: an Apprise URL, which holds the
    channel's secrets (a bot token, a password), so it is stored encrypted like Kitsu tokens."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_notifications"
    )
    apprise_url = EncryptedTextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notification settings"
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"Notification settings of {self.user}"

    def __repr__(self) -> str:
        return f"<NotificationSettings user_id={self.user_id}>"


class NoticeKind(models.TextChoices):
    RELINK = "relink", "Kitsu needs linking again"
    SYNC_FAILING = "sync_failing", "Syncs keep failing"
    UNMATCHED = "unmatched", "Watched shows wait for a match"


class NoticeDelivery(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Could not be sent"
    DASHBOARD = "dashboard", "Dashboard only (no Apprise URL)"


class Notice(models.Model):
    """A condition a user should know about, from when it started until it ended: the record
    that it was notified, so that it is told once, not at every sync."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="kitsu_notices"
    )
    kind = models.CharField(max_length=20, choices=NoticeKind.choices)
    message = models.TextField()
    started_at = models.DateTimeField()
    # Set when the condition is over (linked again, a sync succeeded, the shows matched).
    ended_at = models.DateTimeField(null=True, blank=True)
    delivery = models.CharField(
        max_length=10, choices=NoticeDelivery.choices, default=NoticeDelivery.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # Compare-and-swap claim: one worker at a time sends it.
    sending_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=Q(ended_at__isnull=True),
                name="one_open_notice_per_user_and_kind",
            )
        ]
        indexes = [models.Index(fields=["user", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user} since {self.started_at:%Y-%m-%d %H:%M}"


class SpentInvite(models.Model):
    """An invitation link that created an account (revenge_site.accounts): its random id is
    unique, so two sign-ups racing with one link create one account, and deleting that account
    does not make the link work again."""

    nonce = models.CharField(max_length=64, unique=True)
    spent_at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    def __str__(self) -> str:
        return f"Invitation {self.nonce}"
