"""Linking Kitsu (the password form), Sync now, unlinking, a sync's record; and /health/."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from kitsu_sync import health as health_checks
from kitsu_sync.forms import PasswordLinkForm, UnlinkForm
from kitsu_sync.models import LibraryEntry, SyncRun, SyncTrigger
from kitsu_sync.services import linking, schedule, tokens
from kitsu_sync.views.common import link_of


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
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
    link = link_of(request)
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
    link = link_of(request)
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
