"""Kitsu's catalogue in the browser: an anime's page (with the user's entry), a title search,
trending, and a season. Answers come from the database while fresh (services/catalog.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from kitsu_sync.forms import AddForm, SeasonForm
from kitsu_sync.kitsu_api import KitsuError, KitsuNotFound, KitsuUsageError
from kitsu_sync.models import Anime, LibraryEntry
from kitsu_sync.services import catalog
from kitsu_sync.views.common import rating_system_of
from kitsu_sync.views.library import entry_rows

# The pages of other sites an anime is known on, by the Anime field holding its id there.
SITES = (
    ("mal_id", "MyAnimeList", "https://myanimelist.net/anime/{}"),
    ("anilist_id", "AniList", "https://anilist.co/anime/{}"),
    ("anidb_id", "AniDB", "https://anidb.net/anime/{}"),
    ("tvdb_id", "TheTVDB", "https://thetvdb.com/dereferrer/series/{}"),
)


def _links(anime: Anime) -> list[tuple[str, str]]:
    links = [("Kitsu", f"https://kitsu.app/anime/{anime.slug or anime.kitsu_id}")]
    links += [
        (name, url.format(getattr(anime, field)))
        for field, name, url in SITES
        if getattr(anime, field)
    ]
    return links


@login_required
@require_GET
def anime_page(request: HttpRequest, kitsu_anime_id: int) -> HttpResponse:
    kitsu_id = kitsu_anime_id
    try:
        details = catalog.anime_details(kitsu_id=kitsu_id)
    except KitsuNotFound as exc:
        raise Http404(f"Kitsu has no anime {kitsu_id}.") from exc
    except KitsuError as exc:
        context = {"problem": exc.message, "kitsu_id": kitsu_id}
        return render(request, "kitsu_sync/anime_unavailable.html", context, status=502)
    anime = details.anime
    entry = (
        LibraryEntry.objects.filter(user=request.user, anime=anime).select_related("anime").first()
    )
    context = {
        "anime": anime,
        "details": details,
        "links": _links(anime),
        "season": catalog.season_of(anime.start_date),
        "row": entry_rows([entry], rating_system=rating_system_of(request))[0] if entry else None,
        "add_form": AddForm(initial={"kitsu_anime_id": anime.kitsu_id}),
        "next": request.get_full_path(),
    }
    return render(request, "kitsu_sync/anime.html", context)


def _in_list(request: HttpRequest, anime: list[Anime]) -> dict[int, LibraryEntry]:
    """The user's entries for these anime, by anime pk (one query)."""
    entries = LibraryEntry.objects.filter(user=request.user, anime__in=anime)
    return {entry.anime_id: entry for entry in entries}


def _catalog_page(
    request: HttpRequest,
    title: str,
    answer: catalog.Answer | None,
    *,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    found = answer.anime if answer else []
    listed = _in_list(request, found)
    results = [
        {
            "anime": anime,
            "entry": listed.get(anime.pk),
            "form": AddForm(initial={"kitsu_anime_id": anime.kitsu_id}),
        }
        for anime in found
    ]
    context = {
        "title": title,
        "answer": answer,
        "results": results,
        "next": request.get_full_path(),
        **extra,
    }
    return render(request, "kitsu_sync/catalog.html", context, status=status)


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    if not query:
        return _catalog_page(request, "Find anime", None, query=query)
    try:
        answer = catalog.search(query=query)
    except KitsuUsageError as exc:
        return _catalog_page(request, "Find anime", None, query=query, problem=exc.message)
    except KitsuError as exc:
        problem = f"Kitsu's search did not answer: {exc.message}"
        return _catalog_page(request, "Find anime", None, query=query, problem=problem, status=502)
    return _catalog_page(request, f"Anime titled “{query}”", answer, query=query)


@login_required
@require_GET
def trending(request: HttpRequest) -> HttpResponse:
    try:
        answer = catalog.trending()
    except KitsuError as exc:
        problem = f"Kitsu did not answer: {exc.message}"
        return _catalog_page(request, "Trending on Kitsu", None, problem=problem, status=502)
    return _catalog_page(request, "Trending on Kitsu", answer)


@login_required
@require_GET
def season(request: HttpRequest) -> HttpResponse:
    current, current_year = catalog.current_season(timezone.now().date())
    form = SeasonForm(request.GET)
    chosen, year = current, current_year
    if form.is_valid():
        chosen = form.cleaned_data["season"] or current
        year = form.cleaned_data["year"] or current_year
    form = SeasonForm(initial={"season": chosen, "year": year})
    title = f"{chosen.title()} {year}"
    try:
        answer = catalog.season(season=chosen, year=year)
    except KitsuError as exc:
        problem = f"Kitsu did not answer: {exc.message}"
        return _catalog_page(request, title, None, season_form=form, problem=problem, status=502)
    return _catalog_page(request, title, answer, season_form=form)
