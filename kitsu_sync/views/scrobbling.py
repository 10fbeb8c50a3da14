"""Scrobbling settings on the dashboard: API keys, media servers, shows not matched yet, and
the user's choices for shows."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from kitsu_sync.forms import ApiKeyForm, MatchForm, MediaServerForm
from kitsu_sync.models import MediaOverride, MediaServer
from kitsu_sync.services import api_keys, scrobble
from kitsu_sync.views.dashboard import render_dashboard


@never_cache
@login_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return render_dashboard(request, key_form=form, status=400)
    try:
        _, key = api_keys.create_key(
            user=request.user,
            name=form.cleaned_data["name"],
            server_users=form.cleaned_data["server_users"],
        )
    except api_keys.ApiKeyError as exc:
        form.add_error("name", exc.message)
        return render_dashboard(request, key_form=form, status=400)
    # Shown on this answer only: the key is not kept, just its hash.
    return render_dashboard(request, new_key=key)


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
        return render_dashboard(request, server_form=form, status=400)
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
