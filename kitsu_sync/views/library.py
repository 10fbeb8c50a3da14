"""The user's list: a page of it (sorted, filtered, searched), and each entry edited where it is
shown, added, removed, or sent to Kitsu again.

Every action is a plain form POST that redirects back; sent by htmx (`request.htmx`), it answers
the entry's new HTML instead, which htmx swaps in place.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kitsu_sync.forms import AddForm, EntryForm, LibraryFilterForm
from kitsu_sync.kitsu_api import KitsuError, KitsuNotFound
from kitsu_sync.mapping import score_label
from kitsu_sync.models import LibraryEntry, WatchStatus
from kitsu_sync.services import entries as kitsu_entries
from kitsu_sync.services import outbox, watch
from kitsu_sync.views.common import link_of, rating_system_of

LIBRARY_PAGE_SIZE = 50


@login_required
@require_GET
def library(request: HttpRequest) -> HttpResponse:
    form = LibraryFilterForm(request.GET)
    listed = LibraryEntry.objects.filter(user=request.user).select_related("anime")
    status = query = ""
    if form.is_valid():
        status, query = form.cleaned_data["status"], form.cleaned_data["q"].strip()
    if status:
        listed = listed.filter(status=status)
    if query:
        listed = listed.filter(anime__title__icontains=query) | listed.filter(
            anime__title_en__icontains=query
        )
    listed = listed.order_by(*form.ordering())
    page = Paginator(listed, LIBRARY_PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    context = {
        "form": form,
        "filtered": bool(status or query),
        "page": page,
        # No edit forms: a row's form is fetched when its Edit opens (most are never opened,
        # and 50 forms' widgets were most of the page's rendering time).
        "rows": entry_rows(shown, rating_system=rating_system_of(request), forms=False),
        "link": link_of(request),
        "keep": _kept_query(request),
    }
    return render(request, "kitsu_sync/library.html", context)


def entry_rows(
    shown: list[LibraryEntry], *, rating_system: str, forms: bool = True
) -> list[dict[str, Any]]:
    """Each entry with where it stands with Kitsu and, with `forms`, its edit form (no query
    per entry)."""
    states = kitsu_entries.standings(shown)
    return [
        {
            "entry": entry,
            "standing": states[entry.pk],
            "form": _form_of(entry, rating_system) if forms else None,
            "rating_system": rating_system,
            "score_label": score_label(entry.score, rating_system),
        }
        for entry in shown
    ]


def _form_of(entry: LibraryEntry, rating_system: str) -> EntryForm:
    return EntryForm.of(entry, rating_system=rating_system, prefix=f"e{entry.pk}")


def _kept_query(request: HttpRequest) -> str:
    """The list page's query without its page number (for links that keep the filters)."""
    kept = request.GET.copy()
    kept.pop("page", None)
    return kept.urlencode()


def _back(request: HttpRequest, fallback: str = "kitsu_sync:library") -> HttpResponse:
    """Back where the form was (the list with its filters, an anime page), never elsewhere."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


def _own_entry(request: HttpRequest, kitsu_anime_id: int) -> LibraryEntry:
    return get_object_or_404(
        LibraryEntry.objects.select_related("anime"),
        user=request.user,
        anime__kitsu_id=kitsu_anime_id,
    )


def _edit_form(request: HttpRequest, entry: LibraryEntry) -> HttpResponse:
    rating_system = rating_system_of(request)
    [row] = entry_rows([entry], rating_system=rating_system)
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    shown_as = "card" if request.GET.get("shown_as") == "card" else "row"
    context = {"row": row, "next": next_url, "shown_as": shown_as}
    if request.htmx:
        return render(request, "kitsu_sync/_entry_form_body.html", context)
    return render(request, "kitsu_sync/entry_edit.html", {**context, "plain": True})


def _shown(request: HttpRequest, entry: LibraryEntry, problem: str = "") -> HttpResponse:
    """The entry as it is now, as a list row or an anime page's card, for htmx to swap in
    (200 even with a problem: the entry says what was wrong)."""
    entry.refresh_from_db()
    [row] = entry_rows([entry], rating_system=rating_system_of(request))
    row["problem"] = problem
    card = request.POST.get("shown_as") == "card"
    template = "kitsu_sync/_entry_card.html" if card else "kitsu_sync/_entry_row.html"
    return render(request, template, {"row": row, "next": request.POST.get("next", "")})


@login_required
@require_http_methods(["GET", "POST"])
def entry_edit(request: HttpRequest, kitsu_anime_id: int) -> HttpResponse:
    """GET: the entry's edit form (for htmx, the form a list row's Edit opens; else a page of
    its own). POST: the change saved, and sent to Kitsu when changes are."""
    entry = _own_entry(request, kitsu_anime_id)
    if request.method == "GET":
        return _edit_form(request, entry)
    form = EntryForm(request.POST, rating_system=rating_system_of(request), prefix=f"e{entry.pk}")
    problem = ""
    if form.is_valid():
        try:
            kitsu_entries.update_entry(
                user_id=request.user.pk,
                anime_kitsu_id=kitsu_anime_id,
                changes=form.changes(entry),
            )
        except kitsu_entries.EntryError as exc:
            problem = exc.message
    else:
        problem = "; ".join(
            f"{form.fields[name].label if name in form.fields else ''}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        )
    if request.htmx:
        return _shown(request, entry, problem)
    if problem:
        messages.error(request, f"{entry.anime} was not changed: {problem}")
    else:
        messages.success(request, f"{entry.anime} is saved.")
    return _back(request)


@login_required
@require_POST
def entry_plus_one(request: HttpRequest, kitsu_anime_id: int) -> HttpResponse:
    """The next episode watched: progress moves on, the show starts or completes."""
    entry = _own_entry(request, kitsu_anime_id)
    count = entry.anime.episode_count
    if count and entry.progress >= count and entry.status == WatchStatus.COMPLETED:
        problem = f"{entry.anime} is completed: all {count} episodes are watched."
        if request.htmx:
            return _shown(request, entry, problem)
        messages.info(request, problem)
        return _back(request)
    watch.record_watch_progress(
        user_id=request.user.pk,
        anime_kitsu_id=kitsu_anime_id,
        episode=entry.progress + 1,
        source="web",
    )
    if request.htmx:
        return _shown(request, entry)
    messages.success(request, f"{entry.anime}: episode {entry.progress + 1} watched.")
    return _back(request)


@login_required
@require_http_methods(["GET", "POST"])
def entry_remove(request: HttpRequest, kitsu_anime_id: int) -> HttpResponse:
    """Remove an entry, after a confirmation (a page without JavaScript, a dialog with it)."""
    entry = _own_entry(request, kitsu_anime_id)
    if request.method == "GET":
        context = {"entry": entry, "sends": outbox.sends_to_kitsu(request.user.pk)}
        return render(request, "kitsu_sync/entry_remove.html", context)
    kitsu_entries.delete_entry(user_id=request.user.pk, anime_kitsu_id=kitsu_anime_id)
    also = (
        " and from Kitsu" if outbox.sends_to_kitsu(request.user.pk) and entry.kitsu_entry_id else ""
    )
    if request.htmx:
        return HttpResponse("")  # the row goes away
    messages.success(request, f"{entry.anime} is removed from your list{also}.")
    return _back(request)


@login_required
@require_POST
def entry_add(request: HttpRequest) -> HttpResponse:
    form = AddForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a status to add the anime with.")
        return _back(request)
    kitsu_id = form.cleaned_data["kitsu_anime_id"]
    try:
        entry, created = kitsu_entries.add_entry(
            user_id=request.user.pk, anime_kitsu_id=kitsu_id, status=form.cleaned_data["status"]
        )
    except KitsuNotFound:
        messages.error(request, f"Kitsu has no anime {kitsu_id}.")
        return _back(request)
    except KitsuError as exc:
        messages.error(request, f"Kitsu could not be asked about that anime: {exc.message}")
        return _back(request)
    if request.htmx:
        return render(request, "kitsu_sync/_in_list.html", {"anime": entry.anime, "entry": entry})
    if created:
        messages.success(
            request, f"{entry.anime} is in your list now ({entry.get_status_display()})."
        )
    else:
        messages.info(request, f"{entry.anime} was in your list already.")
    return _back(request, fallback="kitsu_sync:library")


@login_required
@require_POST
def entry_resend(request: HttpRequest, kitsu_anime_id: int) -> HttpResponse:
    """Send a change Kitsu refused once more, as it is (after fixing what Kitsu said)."""
    entry = _own_entry(request, kitsu_anime_id)
    if outbox.retry_failed(user_id=request.user.pk, anime_id=entry.anime_id):
        messages.success(request, f"{entry.anime} will be sent to Kitsu again now.")
    else:
        messages.info(request, f"Nothing of {entry.anime} is waiting to be sent again.")
    if request.htmx:
        return _shown(request, entry)
    return _back(request)
