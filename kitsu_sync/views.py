"""The web UI: dashboard, password link, sync now, unlink, the user's list and sync history;
and the operator's health endpoint.

Every page view shows or changes only the signed-in user's own data; state changes are POST
only. Another user's object is "not found" (404), never "forbidden", so ids reveal nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from kitsu_sync import health as health_checks
from kitsu_sync.forms import (
    ApiKeyForm,
    LibraryFilterForm,
    MatchForm,
    MediaServerForm,
    PasswordLinkForm,
    UnlinkForm,
)
from kitsu_sync.kitsu_api import KitsuError
from kitsu_sync.merge import SyncDirection
from kitsu_sync.models import (
    KitsuOutbox,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    MediaOverride,
    MediaServer,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    UnmatchedItem,
    UnmatchedStatus,
)
from kitsu_sync.services import api_keys, linking, metadata, outbox, schedule, scrobble, tokens
from kitsu_sync.services import entries as kitsu_entries

LIBRARY_PAGE_SIZE = 50
RECENT_RUNS = 5


def _link_of(request: HttpRequest) -> KitsuToken | None:
    # Pages never need the tokens themselves: leave them encrypted in the database.
    return (
        KitsuToken.objects.defer("access_token", "refresh_token").filter(user=request.user).first()
    )


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return _dashboard(request)


def _dashboard(
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
        "link": _link_of(request),
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


@login_required
@require_http_methods(["GET", "POST"])
def link_password(request: HttpRequest) -> HttpResponse:
    form = PasswordLinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            link = linking.link_with_password(
                user=request.user,
                login=form.cleaned_data["login"],
                password=form.cleaned_data["password"],
                request=request,
            )
        except linking.LinkFailed as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                f"Linked to Kitsu as {link.kitsu_display_name or link.kitsu_username}. "
                "Your list is being imported.",
            )
            return redirect("kitsu_sync:dashboard")
    context = {"form": form, "kitsu_host": urlsplit(settings.KITSU_OAUTH_URL).netloc}
    status = 400 if form.errors else 200
    return render(request, "kitsu_sync/link_password.html", context, status=status)


@login_required
@require_POST
def sync_now(request: HttpRequest) -> HttpResponse:
    link = _link_of(request)
    if link is None:
        messages.error(request, "Link your Kitsu account first.")
    elif link.needs_relink:
        messages.error(request, "Kitsu needs you to link again before syncing can resume.")
    elif schedule.request_sync(user_id=request.user.pk, trigger=SyncTrigger.MANUAL):
        messages.success(request, "Sync started. This page shows its progress.")
    else:
        messages.info(request, "A sync is already queued or running.")
    return redirect("kitsu_sync:dashboard")


@login_required
@require_http_methods(["GET", "POST"])
def unlink(request: HttpRequest) -> HttpResponse:
    link = _link_of(request)
    if link is None:
        messages.info(request, "No Kitsu account is linked.")
        return redirect("kitsu_sync:dashboard")
    form = UnlinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        revoked = tokens.unlink(user=request.user, delete_library=form.delete_library)
        kept = "deleted" if form.delete_library else "kept"
        messages.success(request, f"Kitsu is unlinked. Your imported list was {kept}.")
        if not revoked:
            messages.warning(
                request,
                "Kitsu could not be reached to cancel the access it gave this server; "
                "Revenge has deleted its own copy of the tokens.",
            )
        return redirect("kitsu_sync:dashboard")
    context = {
        "link": link,
        "form": form,
        "entry_count": LibraryEntry.objects.filter(user=request.user).count(),
    }
    return render(request, "kitsu_sync/unlink.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def library(request: HttpRequest) -> HttpResponse:
    listed = (
        LibraryEntry.objects.filter(user=request.user)
        .select_related("anime")
        .order_by("anime__title", "pk")
    )
    form = LibraryFilterForm(request.GET)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    if status:
        listed = listed.filter(status=status)
    page = Paginator(listed, LIBRARY_PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    states = kitsu_entries.standings(shown)
    rows = [(entry, states[entry.pk]) for entry in shown]
    context = {
        "form": form,
        "status": status,
        "page": page,
        "rows": rows,
        "link": _link_of(request),
    }
    return render(request, "kitsu_sync/library.html", context)


@login_required
@require_GET
def sync_run(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(SyncRun, pk=pk, user=request.user)
    return render(request, "kitsu_sync/sync_run.html", {"run": run})


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers and `docker compose`: 200 when healthy, 503 otherwise; no secrets."""
    report = health_checks.health_report()
    return JsonResponse(
        {"status": "ok" if report["ok"] else "unhealthy", "checks": report["checks"]},
        status=200 if report["ok"] else 503,
    )


# --- scrobbling: keys, servers, unmatched items -------------------------------------------------


@never_cache
@login_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, key_form=form, status=400)
    try:
        _, key = api_keys.create_key(
            user=request.user,
            name=form.cleaned_data["name"],
            server_users=form.cleaned_data["server_users"],
        )
    except api_keys.ApiKeyError as exc:
        form.add_error("name", exc.message)
        return _dashboard(request, key_form=form, status=400)
    # Shown on this answer only: the key is not kept, just its hash.
    return _dashboard(request, new_key=key)


@login_required
@require_POST
def entry_resend(request: HttpRequest, kitsu_anime_id: int) -> HttpResponse:
    """Send a change Kitsu refused once more, as it is (after fixing what Kitsu said)."""
    entry = get_object_or_404(LibraryEntry, user=request.user, anime__kitsu_id=kitsu_anime_id)
    if outbox.retry_failed(user_id=request.user.pk, anime_id=entry.anime_id):
        messages.success(request, f"{entry.anime} will be sent to Kitsu again now.")
    else:
        messages.info(request, f"Nothing of {entry.anime} is waiting to be sent again.")
    return redirect("kitsu_sync:library")


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    if not api_keys.revoke(user=request.user, key_id=pk):
        raise Http404("No such key.")
    messages.success(request, "The key is revoked: anything still using it is refused now.")
    return redirect("kitsu_sync:dashboard")


@login_required
@require_POST
def media_server_add(request: HttpRequest) -> HttpResponse:
    form = MediaServerForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, server_form=form, status=400)
    MediaServer.objects.create(user=request.user, **form.cleaned_data)
    messages.success(request, "Media server added: Revenge can ask it which show an episode is.")
    return redirect("kitsu_sync:dashboard")


@login_required
@require_POST
def media_server_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(MediaServer, pk=pk, user=request.user).delete()
    messages.success(request, "Media server removed.")
    return redirect("kitsu_sync:dashboard")


@login_required
@require_POST
def unmatched_match(request: HttpRequest, pk: int) -> HttpResponse:
    form = MatchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the Kitsu anime's id (a number) to match it with.")
        return redirect("kitsu_sync:dashboard")
    try:
        results = scrobble.match_unmatched(
            user_id=request.user.pk,
            item_id=pk,
            kitsu_id=form.cleaned_data["kitsu_id"],
            episode_offset=form.cleaned_data["episode_offset"] or 0,
            every_season=form.cleaned_data["every_season"],
        )
    except scrobble.NoSuchUnmatched as exc:
        raise Http404(exc.message) from exc
    except scrobble.UnmatchedError as exc:
        messages.error(request, exc.message)
        return redirect("kitsu_sync:dashboard")
    recorded = sum(r.outcome == scrobble.Outcome.RECORDED for r in results)
    counted = sum(
        r.outcome in (scrobble.Outcome.UNCHANGED, scrobble.Outcome.REPEATED) for r in results
    )
    left = [r.reason for r in results if r.outcome == scrobble.Outcome.UNMATCHED]
    summary = f"{recorded} waiting episode(s) were recorded now"
    if counted:
        summary += f", {counted} had been counted already"
    if left:
        summary += f"; still not matched: {left[0]}"
    messages.success(request, f"Matched. Revenge remembers it for later episodes; {summary}.")
    return redirect("kitsu_sync:dashboard")


@login_required
@require_POST
def unmatched_ignore(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        scrobble.ignore_unmatched(user_id=request.user.pk, item_id=pk)
    except scrobble.UnmatchedError as exc:
        raise Http404(exc.message) from exc
    messages.success(request, "Ignored: Revenge no longer records this series.")
    return redirect("kitsu_sync:dashboard")


@login_required
@require_POST
def override_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(MediaOverride, pk=pk, user=request.user).delete()
    messages.success(request, "Your choice for that show is forgotten.")
    return redirect("kitsu_sync:dashboard")
