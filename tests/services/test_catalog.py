"""Kitsu's catalogue for the web pages: kept while fresh, asked again after, and the kept
answer shown (with the reason) when Kitsu cannot answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync.kitsu_api import KitsuError, KitsuNotFound, KitsuUsageError
from kitsu_sync.models import Anime, CatalogListing
from kitsu_sync.services import catalog

pytestmark = pytest.mark.django_db

SEARCH_ROUTE = "GET /api/edge/anime"


def requests_made(sandbox: Any) -> int:
    return sandbox.stats()["total"]


def a_title(sandbox: Any) -> Any:
    return next(a for a in sandbox.store.anime if not a.nsfw and a.canonical_title)


def test_an_anime_is_asked_of_kitsu_once_while_its_details_are_fresh(kitsu: Any) -> None:
    record = a_title(kitsu)

    first = catalog.anime_details(kitsu_id=record.id)
    asked = requests_made(kitsu)
    again = catalog.anime_details(kitsu_id=record.id)

    assert first.anime.title == record.canonical_title
    assert first.fetched_at is not None
    assert again.fetched_at == first.fetched_at
    assert requests_made(kitsu) == asked == 1
    assert Anime.objects.get(kitsu_id=record.id).details_fetched_at == first.fetched_at


def test_old_details_are_asked_again_and_kept_when_kitsu_cannot_answer(
    kitsu: Any, kitsu_at: Callable[..., Any], refused_url: str
) -> None:
    record = a_title(kitsu)
    catalog.anime_details(kitsu_id=record.id)
    old = timezone.now() - timedelta(days=2)
    Anime.objects.filter(kitsu_id=record.id).update(details_fetched_at=old)
    kitsu_at(api_url=refused_url, oauth_url=refused_url)

    shown = catalog.anime_details(kitsu_id=record.id)

    assert shown.anime.title == record.canonical_title
    assert shown.fetched_at == old
    assert shown.stale


def test_an_anime_kitsu_does_not_have_is_not_found(kitsu: Any) -> None:
    with pytest.raises(KitsuNotFound):
        catalog.anime_details(kitsu_id=99_999_999)


def test_a_search_is_kept_for_its_time_and_the_same_words_share_it(kitsu: Any) -> None:
    record = a_title(kitsu)
    words = record.canonical_title.split()[0]

    first = catalog.search(query=words)
    asked = requests_made(kitsu)
    again = catalog.search(query=f"  {words.upper()} ")

    assert record.id in [anime.kitsu_id for anime in first.anime]
    assert [a.kitsu_id for a in again.anime] == [a.kitsu_id for a in first.anime]
    assert requests_made(kitsu) == asked
    CatalogListing.objects.update(fetched_at=timezone.now() - timedelta(hours=2))
    catalog.search(query=words)
    assert requests_made(kitsu) == asked + 1


def test_titles_in_any_script_are_searched_and_never_share_a_kept_answer(kitsu: Any) -> None:
    catalog.search(query="進撃の巨人 2")
    asked = requests_made(kitsu)

    catalog.search(query="鬼滅の刃 2")

    assert requests_made(kitsu) == asked + 1
    assert CatalogListing.objects.count() == 2


def test_an_empty_search_is_refused_with_what_to_do() -> None:
    with pytest.raises(KitsuUsageError, match="Type part of a title"):
        catalog.search(query="  ")


def test_trending_and_a_season_come_in_kitsus_order(kitsu: Any) -> None:
    trending = catalog.trending()
    fall = catalog.season(season="fall", year=2023)

    assert trending.anime, "the sandbox has trending anime"
    listed = CatalogListing.objects.get(kind="trending")
    assert [a.kitsu_id for a in trending.anime] == listed.kitsu_ids
    assert all(a.start_date is None or a.start_date.year in (2023, 2024) for a in fall.anime), (
        "a season's anime start in it"
    )


def test_a_list_kitsu_cannot_give_and_nothing_kept_is_an_error(
    kitsu_at: Callable[..., Any], refused_url: str
) -> None:
    kitsu_at(api_url=refused_url, oauth_url=refused_url)

    with pytest.raises(KitsuError):
        catalog.trending()


@pytest.mark.parametrize(
    ("day", "season"),
    [
        (date(2026, 1, 1), ("winter", 2026)),
        (date(2026, 3, 31), ("winter", 2026)),
        (date(2026, 4, 1), ("spring", 2026)),
        (date(2026, 8, 15), ("summer", 2026)),
        (date(2026, 12, 6), ("fall", 2026)),
    ],
)
def test_the_current_season_is_kitsus(day: date, season: tuple[str, int]) -> None:
    assert catalog.current_season(day) == season
    assert catalog.season_of(day) == f"{season[0].title()} {season[1]}"
