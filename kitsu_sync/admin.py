"""Django admin: sync states (with Sync now / Full resync), run history, links without their
secrets, anime with their external ids, library entries, and what resolution uses: users'
overrides, media servers (their keys never shown), and the mapping datasets' state."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from kitsu_sync.merge import SYNCED_FIELDS
from kitsu_sync.models import (
    MAPPING_SITES,
    Anime,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    MappingDataset,
    MediaOverride,
    MediaServer,
    Notice,
    NotificationSettings,
    SyncRun,
    SyncTrigger,
)
from kitsu_sync.services.schedule import request_sync


def _where(error: dict[str, Any]) -> str:
    if not error.get("anime"):
        return ""
    title = f": {error['title']}" if error.get("title") else ""
    return f" (anime {error['anime']}{title})"


def _error_list(errors: list[dict[str, Any]] | None) -> str:
    if not errors:
        return "None"
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li>{}{}</li>",
            (
                (error.get("reason", ""), _where(error))
                for error in errors
                if isinstance(error, dict)
            ),
        ),
    )


def _conflict_list(conflicts: list[dict[str, Any]] | None) -> str:
    if not conflicts:
        return "None"
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li>{} ({}): {} — Revenge {}, Kitsu {}; kept {} ({})</li>",
            (
                (
                    conflict.get("title") or f"anime {conflict.get('anime')}",
                    conflict.get("anime"),
                    conflict.get("field"),
                    repr(conflict.get("local")),
                    repr(conflict.get("remote")),
                    conflict.get("kept"),
                    conflict.get("rule"),
                )
                for conflict in conflicts
                if isinstance(conflict, dict)
            ),
        ),
    )


@admin.register(KitsuSyncState)
class KitsuSyncStateAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "last_sync_status",
        "last_sync_at",
        "next_sync_at",
        "entries_synced",
        "progress",
        "error_count",
    )
    list_filter = ("last_sync_status",)
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    actions = ("sync_now", "full_resync")
    exclude = ("errors",)
    readonly_fields = (
        "user",
        "last_sync_at",
        "last_sync_status",
        "entries_synced",
        "readable_errors",
        "next_sync_at",
        "last_full_sync_at",
        "cursor_updated_at",
        "sync_claimed_until",
        "progress_done",
        "progress_total",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Progress")
    def progress(self, state: KitsuSyncState) -> str:
        if state.progress_total is None:
            return f"{state.progress_done}" if state.progress_done else ""
        return f"{state.progress_done} / {state.progress_total}"

    @admin.display(description="Errors")
    def error_count(self, state: KitsuSyncState) -> int:
        return len(state.errors or [])

    @admin.display(description="Errors of the last sync")
    def readable_errors(self, state: KitsuSyncState) -> str:
        return _error_list(state.errors)

    def _request(self, request: HttpRequest, queryset: QuerySet, *, full: bool) -> None:
        queued = sum(
            request_sync(user_id=user_id, trigger=SyncTrigger.ADMIN, full=full)
            for user_id in queryset.values_list("user_id", flat=True)
        )
        skipped = queryset.count() - queued
        kind = "full resync" if full else "sync"
        self.message_user(request, f"Queued a {kind} for {queued} user(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} user(s) skipped: a sync is already queued or running, or the Kitsu "
                "link needs to be made again.",
                messages.WARNING,
            )

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._request(request, queryset, full=False)

    @admin.action(description="Full resync (also removes entries deleted on Kitsu)")
    def full_resync(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._request(request, queryset, full=True)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "started_at",
        "trigger",
        "direction",
        "full",
        "dry_run",
        "outcome",
        "fetched",
        "created",
        "updated",
        "deleted",
        "pushed",
        "conflicts",
        "failed",
        "requests_made",
    )
    list_filter = ("outcome", "trigger", "direction", "full", "dry_run")
    search_fields = ("user__username",)
    list_select_related = ("user",)
    date_hierarchy = "started_at"
    exclude = ("errors", "conflict_log", "planned_changes")
    readonly_fields = ("readable_errors", "readable_conflicts", "readable_planned_changes")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SyncRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SyncRun | None = None) -> bool:
        return False

    @admin.display(description="Errors")
    def readable_errors(self, run: SyncRun) -> str:
        return _error_list(run.errors)

    @admin.display(description="Conflicts and how they were settled")
    def readable_conflicts(self, run: SyncRun) -> str:
        return _conflict_list(run.conflict_log)

    @admin.display(description="Planned changes (dry run)")
    def readable_planned_changes(self, run: SyncRun) -> str:
        if not run.planned_changes:
            return "None"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} on {}: {} — {}</li>",
                (
                    (
                        change.get("action"),
                        change.get("side"),
                        change.get("title") or f"anime {change.get('anime')}",
                        ", ".join(
                            f"{name} {values.get('from')!r} → {values.get('to')!r}"
                            for name, values in (change.get("changes") or {}).items()
                        ),
                    )
                    for change in run.planned_changes
                ),
            ),
        )


@admin.register(KitsuToken)
class KitsuTokenAdmin(admin.ModelAdmin):
    """Links, never their secrets: the token fields are not on any admin page."""

    list_display = (
        "user",
        "kitsu_username",
        "kitsu_user_id",
        "auth_flow",
        "token_expires_at",
        "needs_relink",
    )
    list_filter = ("needs_relink", "auth_flow")
    search_fields = ("user__username", "kitsu_username", "kitsu_user_id")
    list_select_related = ("user",)
    fields = (
        "user",
        "kitsu_user_id",
        "kitsu_username",
        "kitsu_display_name",
        "auth_flow",
        "token_expires_at",
        "needs_relink",
        "relink_reason",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: KitsuToken | None = None) -> bool:
        return False


@admin.register(Anime)
class AnimeAdmin(admin.ModelAdmin):
    list_display = (
        "kitsu_id",
        "title",
        "subtype",
        "episode_count",
        "airing_status",
        "mal_id",
        "anilist_id",
        "anidb_id",
        "tvdb_id",
    )
    list_filter = ("subtype", "airing_status", "nsfw")
    search_fields = ("title", "title_en", "title_native", "slug", "=kitsu_id", "=mal_id")
    ordering = ("title",)
    # Django 6 assumes https for a URL typed without a scheme; say so now (Kitsu's images are).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(LibraryEntry)
class LibraryEntryAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "anime",
        "status",
        "progress",
        "score",
        "rewatching",
        "kitsu_entry_id",
        "updated_at",
    )
    list_filter = ("status", "rewatching", "private")
    search_fields = ("user__username", "anime__title", "=kitsu_entry_id")
    list_select_related = ("user", "anime")
    raw_id_fields = ("user", "anime")
    readonly_fields = (
        "kitsu_entry_id",
        "kitsu_updated_at",
        "synced_values",
        "local_updated_at",
        "created_at",
        "updated_at",
    )

    def save_model(self, request: HttpRequest, obj: LibraryEntry, form: Any, change: bool) -> None:
        # An edit here is a Revenge-side change: the next sync sends it to Kitsu (if allowed).
        if not change or set(form.changed_data) & set(SYNCED_FIELDS):
            obj.local_updated_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(MediaOverride)
class MediaOverrideAdmin(admin.ModelAdmin):
    """Users' own answers for shows: "this series (season) is that Kitsu anime", "ignore"."""

    list_display = ("user", "site", "external_id", "season", "kitsu_id", "episode_offset", "ignore")
    list_filter = ("site", "ignore")
    search_fields = ("user__username", "external_id", "kitsu_id")
    raw_id_fields = ("user",)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "site":
            kwargs["widget"] = forms.Select(
                choices=[(site, site) for site in (*MAPPING_SITES, "title")]
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class MediaServerForm(forms.ModelForm):
    """The API key is written, never shown: leave it empty to keep the stored one."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Jellyfin/Emby API key or Plex token. Stored encrypted; leave empty to keep it.",
    )

    class Meta:
        model = MediaServer
        fields = ("user", "kind", "name", "url", "api_key", "server_user_id")

    def clean_api_key(self) -> str:
        key = self.cleaned_data.get("api_key", "")
        if not key and self.instance.pk:
            return self.instance.api_key
        if not key:
            raise forms.ValidationError("A new media server needs its API key.")
        return key


@admin.register(MediaServer)
class MediaServerAdmin(admin.ModelAdmin):
    form = MediaServerForm
    list_display = ("name", "kind", "url", "user")
    list_filter = ("kind",)
    raw_id_fields = ("user",)


@admin.register(MappingDataset)
class MappingDatasetAdmin(admin.ModelAdmin):
    """Read-only: `kitsu_mappings_update` and the hourly task load the datasets."""

    list_display = (
        "source",
        "records",
        "loaded_at",
        "published_at",
        "last_attempt_at",
        "last_error",
    )
    readonly_fields = (
        "source",
        "url",
        "records",
        "loaded_at",
        "published_at",
        "sha256",
        "last_attempt_at",
        "last_error",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    """Read-only: what each user was told (re-link needed, syncs failing, shows unmatched),
    when, and whether it reached them."""

    list_display = ("user", "kind", "started_at", "ended_at", "delivery", "attempts", "sent_at")
    list_filter = ("kind", "delivery", ("ended_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username",)
    readonly_fields = (
        "user",
        "kind",
        "message",
        "started_at",
        "ended_at",
        "delivery",
        "attempts",
        "sent_at",
        "last_error",
    )
    exclude = ("sending_until",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    """Who has an Apprise URL of their own; never the URL (it holds the channel's secrets)."""

    list_display = ("user", "has_url", "updated_at")
    fields = ("user", "has_url", "updated_at")
    readonly_fields = fields

    @admin.display(boolean=True, description="Apprise URL set")
    def has_url(self, row: NotificationSettings) -> bool:
        return bool(row.apprise_url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
