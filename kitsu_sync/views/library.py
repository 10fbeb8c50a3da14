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
from kitsu_sync.models import Anime, LibraryEntry, WatchStatus
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


def _local(request: HttpRequest, target: str) -> str:
    """`target` when it is an address on this site, else "" (never a way elsewhere)."""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else ""


def _back(request: HttpRequest, fallback: str = "kitsu_sync:library") -> HttpResponse:
    """Back where the form was (the list with its filters, an anime page), never elsewhere."""
    return redirect(_local(request, request.POST.get("next", "")) or fallback)


def _own_entry(request: HttpRequest, kitsu_anime_id: int) -> LibraryEntry:
    return get_object_or_404(
        LibraryEntry.objects.select_related("anime"),
        user=request.user,
        anime__kitsu_id=kitsu_anime_id,
    )


def _edit_form(request: HttpRequest, entry: LibraryEntry) -> HttpResponse:
    rating_system = rating_system_of(request)
    [row] = entry_rows([entry], rating_system=rating_system)
    next_url = _local(request, request.GET.get("next", ""))
    shown_as = "card" if request.GET.get("shown_as") == "card" else "row"
    context = {"row": row, "next": next_url, "shown_as": shown_as}
    if request.htmx:
        return render(request, "kitsu_sync/_entry_form_body.html", context)
    return render(request, "kitsu_sync/entry_edit.html", {**context, "plain": True})


def _shown(
    request: HttpRequest, entry: LibraryEntry, problem: str = "", form: EntryForm | None = None
) -> HttpResponse:
    """The entry as it is now, as a list row or an anime page's card, for htmx to swap in
    (200 even with a problem: the entry says what was wrong, and `form`, the one the person
    sent, keeps what they typed)."""
    entry.refresh_from_db()
    [row] = entry_rows([entry], rating_system=rating_system_of(request))
    row["problem"] = problem
    if problem and form is not None:
        row["form"] = form
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
        return _shown(request, entry, problem, form)
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
    watched = watch.record_watch_progress(
        user_id=request.user.pk,
        anime_kitsu_id=kitsu_anime_id,
        episode=entry.progress + 1,
        source="web",
        once_in_window=False,
    )
    problem = (
        ""
        if watched.changed
        else f"{entry.anime} was not changed: episode {entry.progress + 1} was counted already."
    )
    if request.htmx:
        return _shown(request, entry, problem)
    if problem:
        messages.info(request, problem)
    else:
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
        return _not_added(request, form, "Choose a status to add the anime with.")
    kitsu_id = form.cleaned_data["kitsu_anime_id"]
    try:
        entry, created = kitsu_entries.add_entry(
            user_id=request.user.pk, anime_kitsu_id=kitsu_id, status=form.cleaned_data["status"]
        )
    except KitsuNotFound:
        return _not_added(request, form, f"Kitsu has no anime {kitsu_id}.")
    except KitsuError as exc:
        return _not_added(
            request, form, f"Kitsu could not be asked about that anime: {exc.message}"
        )
    if request.htmx:
        return render(request, "kitsu_sync/_in_list.html", {"anime": entry.anime, "entry": entry})
    if created:
        messages.success(
            request, f"{entry.anime} is in your list now ({entry.get_status_display()})."
        )
    else:
        messages.info(request, f"{entry.anime} was in your list already.")
    return _back(request, fallback="kitsu_sync:library")


def _not_added(request: HttpRequest, form: AddForm, problem: str) -> HttpResponse:
    """For htmx, the add form again with the problem (what it swaps in place of itself; a
    redirect would put a whole page there); otherwise a message, back where the form was."""
    if request.htmx:
        anime = Anime.objects.filter(kitsu_id=form.data.get("kitsu_anime_id") or 0).first()
        context = {
            "form": AddForm(initial={"kitsu_anime_id": form.data.get("kitsu_anime_id")}),
            "anime": anime or form.data.get("kitsu_anime_id", ""),
            "next": request.POST.get("next", ""),
            "problem": problem,
        }
        return render(request, "kitsu_sync/_add_form.html", context)
    messages.error(request, problem)
    return _back(request)


@login_required
@require_POST
def entry_resend(request: HttpRequest, kitsu_anime_id: int) -> HttpResponse:
    """Send a change Kitsu refused once more, as it is (after fixing what Kitsu said)."""
    entry = _own_entry(request, kitsu_anime_id)
    if outbox.retry_failed(user_id=request.user.pk, anime_id=entry.anime_id):
        problem, said = "", f"{entry.anime} will be sent to Kitsu again now."
    else:
        problem = said = f"Nothing of {entry.anime} is waiting to be sent again."
    if request.htmx:
        return _shown(request, entry, problem)  # the row says it (a message would show later)
    (messages.info if problem else messages.success)(request, said)
    return _back(request)
