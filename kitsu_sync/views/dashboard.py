"""The dashboard: notices, the Kitsu link and its syncs, scrobbling (keys, media servers, shows
not matched yet), and where notices are sent (a POST to the dashboard saves that)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from kitsu_sync.forms import ApiKeyForm, MatchForm, MediaServerForm, NotificationForm
from kitsu_sync.kitsu_api import KitsuError
from kitsu_sync.merge import SyncDirection
from kitsu_sync.models import (
    KitsuOutbox,
    KitsuSyncState,
    LibraryEntry,
    MediaOverride,
    MediaServer,
    NoticeKind,
    SyncRun,
    SyncStatus,
    UnmatchedItem,
    UnmatchedStatus,
)
from kitsu_sync.services import api_keys, metadata, notifications
from kitsu_sync.views.common import link_of

RECENT_RUNS = 5


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save_notification_settings(request)
    return render_dashboard(request)


def _save_notification_settings(request: HttpRequest) -> HttpResponse:
    form = NotificationForm(request.POST)
    if not form.is_valid():
        return render_dashboard(request, notification_form=form, status=400)
    url = form.cleaned_data["apprise_url"]
    notifications.save_apprise_url(user_id=request.user.pk, url=url)
    messages.success(
        request,
        "Notices will be sent to your Apprise URL." if url else "Notices stay on the dashboard.",
    )
    return redirect(reverse("kitsu_sync:dashboard") + "#notifications")


def render_dashboard(
    request: HttpRequest,
    *,
    new_key: str = "",
    key_form: ApiKeyForm | None = None,
    server_form: MediaServerForm | None = None,
    notification_form: NotificationForm | None = None,
    status: int = 200,
) -> HttpResponse:
    state = KitsuSyncState.objects.filter(user=request.user).first()
    running = state is not None and state.last_sync_status in (
        SyncStatus.QUEUED,
        SyncStatus.RUNNING,
    )
    context = {
        "link": link_of(request),
        "state": state,
        "running": running,
        "progress_percent": _percent(state) if running else None,
        "runs": SyncRun.objects.filter(user=request.user)[:RECENT_RUNS],
        "entry_count": LibraryEntry.objects.filter(user=request.user).count(),
        "auth_flow": settings.KITSU_AUTH_FLOW,
        **_scrobbling_context(request, new_key, key_form, server_form),
        **_notices_context(request, notification_form),
    }
    return render(request, "kitsu_sync/dashboard.html", context, status=status)


def _scrobbling_context(
    request: HttpRequest,
    new_key: str,
    key_form: ApiKeyForm | None,
    server_form: MediaServerForm | None,
) -> dict[str, object]:
    """The dashboard's scrobbling part: keys, webhook addresses, servers, unmatched items."""
    api_root = request.build_absolute_uri("/api/v1/")
    finding = _finding(request)
    return {
        "api_keys": api_keys.live_keys(user=request.user),
        "new_key": new_key,
        "key_form": key_form or ApiKeyForm(),
        "server_form": server_form or MediaServerForm(),
        "api_root": api_root,
        "webhook_key": new_key or "YOUR-KEY",
        "media_servers": MediaServer.objects.filter(user=request.user).order_by("name"),
        "shared_servers": MediaServer.objects.filter(user__isnull=True).order_by("name"),
        "unmatched": UnmatchedItem.objects.filter(
            user=request.user, status=UnmatchedStatus.WAITING
        ).order_by("-last_seen")[:50],
        "overrides": MediaOverride.objects.filter(user=request.user).order_by(
            "site", "external_id"
        ),
        "waiting_for_kitsu": KitsuOutbox.objects.filter(user=request.user, failed=False).count(),
        "refused_by_kitsu": KitsuOutbox.objects.filter(user=request.user, failed=True).count(),
        "import_only": settings.KITSU_SYNC_DIRECTION == SyncDirection.IMPORT_ONLY,
        "match_form": MatchForm(),
        **finding,
    }


def _notices_context(
    request: HttpRequest, notification_form: NotificationForm | None
) -> dict[str, object]:
    """The notices block (the re-link one is the banner above the link) and where they go."""
    own = notifications.user_apprise_url(user_id=request.user.pk)
    return {
        "notices": [
            notice
            for notice in notifications.open_notices(user_id=request.user.pk)
            if notice.kind != NoticeKind.RELINK
        ],
        # Only the scheme: the rest of the URL holds the channel's secrets.
        "apprise_scheme": urlsplit(own).scheme if own else "",
        "operator_channel": bool(settings.APPRISE_DEFAULT_URL),
        "notification_form": notification_form or NotificationForm(),
    }


def _finding(request: HttpRequest) -> dict[str, object]:
    """A Kitsu title search for matching one unmatched item (`?find=<item>&q=<title>`)."""
    item_id = request.GET.get("find", "")
    if not item_id.isdigit():
        return {}
    item = UnmatchedItem.objects.filter(pk=int(item_id), user=request.user).first()
    if item is None:
        return {}
    query = (request.GET.get("q") or item.title).strip()
    try:
        results = metadata.search_anime(query=query, limit=10) if query else []
        problem = ""
    except KitsuError as exc:
        results, problem = [], f"Kitsu's search did not answer: {exc.message}"
    return {"finding": item, "find_query": query, "find_results": results, "find_problem": problem}


def _percent(state: KitsuSyncState | None) -> int | None:
    if state is None or not state.progress_total:
        return None
    return min(100, round(100 * state.progress_done / state.progress_total))
