"""The dashboard: the Kitsu link and its syncs, and scrobbling (keys, media servers, shows
not matched yet)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from kitsu_sync.forms import ApiKeyForm, MatchForm, MediaServerForm
from kitsu_sync.kitsu_api import KitsuError
from kitsu_sync.merge import SyncDirection
from kitsu_sync.models import (
    KitsuOutbox,
    KitsuSyncState,
    LibraryEntry,
    MediaOverride,
    MediaServer,
    SyncRun,
    SyncStatus,
    UnmatchedItem,
    UnmatchedStatus,
)
from kitsu_sync.services import api_keys, metadata
from kitsu_sync.views.common import link_of

RECENT_RUNS = 5


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render_dashboard(request)


def render_dashboard(
    request: HttpRequest,
    *,
    new_key: str = "",
    key_form: ApiKeyForm | None = None,
    server_form: MediaServerForm | None = None,
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
