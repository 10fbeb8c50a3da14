"""Anime pages, the title search, trending and the season, in the browser's HTML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from kitsu_sync.models import LibraryEntry
from kitsu_sync.services.catalog import current_season

pytestmark = pytest.mark.django_db


def a_title(sandbox: Any) -> Any:
    return next(
        a for a in sandbox.store.anime if not a.nsfw and a.canonical_title and a.episode_count
    )


def test_an_anime_page_shows_kitsus_details_links_and_an_add_button(
    client: Client, signed_in: Any, kitsu: Any
) -> None:
    record = a_title(kitsu)

    page = client.get(f"/anime/{record.id}/").content.decode()

    assert record.canonical_title in page
    assert f"https://kitsu.app/anime/{record.slug}" in page
    assert 'id="details-age"' in page
    assert f'name="kitsu_anime_id" value="{record.id}"' in page


def test_an_anime_in_the_list_shows_the_users_entry_to_edit(
    client: Client, signed_in: Any, kitsu: Any
) -> None:
    record = a_title(kitsu)
    client.post("/library/add/", {"kitsu_anime_id": record.id, "status": "watching"})

    page = client.get(f"/anime/{record.id}/").content.decode()

    assert 'id="your-entry"' in page
    assert "Watching" in page
    assert f"/library/{record.id}/edit/" in page


def test_an_anime_kitsu_does_not_have_is_404(client: Client, signed_in: Any, kitsu: Any) -> None:
    assert client.get("/anime/99999999/").status_code == 404


def test_an_anime_never_stored_while_kitsu_is_down_says_so(
    client: Client, signed_in: Any, kitsu_at: Callable[..., Any], refused_url: str
) -> None:
    kitsu_at(api_url=refused_url, oauth_url=refused_url)

    response = client.get("/anime/5/")

    assert response.status_code == 502
    assert "Kitsu did not answer" in response.content.decode()


def test_search_results_say_which_are_in_the_list(
    client: Client, signed_in: Any, kitsu: Any
) -> None:
    record = a_title(kitsu)
    client.post("/library/add/", {"kitsu_anime_id": record.id, "status": "completed"})

    response = client.get("/anime/search/", {"q": record.canonical_title})

    results = {result["anime"].kitsu_id: result for result in response.context["results"]}
    assert results[record.id]["entry"].status == "completed"
    page = response.content.decode()
    assert "In your list" in page
    assert 'id="catalog-age"' in page


def test_an_empty_search_asks_for_a_title(client: Client, signed_in: Any) -> None:
    page = client.get("/anime/search/").content.decode()

    assert "Type part of a title" in page


@pytest.mark.parametrize("path", ["/anime/trending/", "/anime/season/"])
def test_trending_and_the_season_list_anime_with_add_buttons(
    client: Client, signed_in: Any, kitsu: Any, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.context["answer"] is not None


def test_the_season_page_defaults_to_the_current_season(
    client: Client, signed_in: Any, kitsu: Any
) -> None:
    name, year = current_season(timezone.now().date())

    response = client.get("/anime/season/")

    assert response.context["title"] == f"{name.title()} {year}"
    chosen = client.get("/anime/season/", {"season": "spring", "year": "2020"})
    assert chosen.context["title"] == "Spring 2020"


def test_a_list_kitsu_cannot_give_is_a_page_that_says_so(
    client: Client, signed_in: Any, kitsu_at: Callable[..., Any], refused_url: str
) -> None:
    kitsu_at(api_url=refused_url, oauth_url=refused_url)

    response = client.get("/anime/trending/")

    assert response.status_code == 502
    assert "Kitsu did not answer" in response.content.decode()


def test_adding_from_a_search_with_htmx_swaps_the_button_for_the_status(
    client: Client, signed_in: Any, kitsu: Any
) -> None:
    record = a_title(kitsu)

    response = client.post(
        "/library/add/",
        {"kitsu_anime_id": record.id, "status": "plan_to_watch"},
        headers={"HX-Request": "true"},
    )

    assert "In your list" in response.content.decode()
    assert LibraryEntry.objects.get(user=signed_in, anime__kitsu_id=record.id)
