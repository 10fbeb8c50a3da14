"""Kitsu's catalogue in a real browser, against the sandbox: a search from the header's box and
a show added from the results, trending, and a season chosen with the season form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from kitsu_sync.models import LibraryEntry, WatchStatus
from kitsu_sync.services import catalog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The sandbox seeds Cowboy Bebop at its real Kitsu id, with its real dates (spring 1998).
BEBOP_ID = 1
BEBOP = "Cowboy Bebop"


def test_a_show_is_found_with_the_header_search_and_added(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    assert not LibraryEntry.objects.filter(user=user, anime__kitsu_id=BEBOP_ID).exists()
    enter_as(page, user)
    page.goto(f"{live_server.url}/library/")

    search = page.get_by_role("search").filter(has=page.get_by_label("Find anime on Kitsu"))
    search.get_by_label("Find anime on Kitsu").fill(BEBOP)
    search.get_by_role("button", name="Search").click()

    expect(page).to_have_url(f"{live_server.url}/anime/search/?q=Cowboy+Bebop")
    expect(page.get_by_role("heading", level=2)).to_have_text(f"Anime titled “{BEBOP}”")
    expect(page.get_by_label("Find anime on Kitsu")).to_have_value(BEBOP)
    result = page.locator("#results > li").filter(
        has=page.get_by_role("link", name=BEBOP, exact=True)
    )
    expect(result).to_have_count(1)
    expect(result).to_contain_text("TV, 26 ep., 1998")

    result.get_by_label("Add as").select_option(label="Watching")
    result.get_by_role("button", name=f"Add {BEBOP} to your list").click()

    # htmx put what the list has in the place of the form.
    expect(result.locator(".in-list")).to_have_text("In your list: Watching")
    expect(result.get_by_role("button", name=re.compile("^Add"))).to_have_count(0)
    entry = LibraryEntry.objects.get(user=user, anime__kitsu_id=BEBOP_ID)
    assert entry.status == WatchStatus.WATCHING
    page.reload()
    expect(result.locator(".in-list")).to_have_text("In your list: Watching")

    result.get_by_role("link", name="In your list").click()
    expect(page).to_have_url(f"{live_server.url}/anime/{BEBOP_ID}/")
    expect(page.locator("#your-entry")).to_contain_text("Watching")


def test_trending_lists_kitsus_trending_anime(
    page: Page, live_server: Any, enter_as: Any, make_user: Any, kitsu: Any
) -> None:
    enter_as(page, make_user())
    page.goto(f"{live_server.url}/")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Trending").click()

    expect(page.get_by_role("heading", level=2)).to_have_text("Trending on Kitsu")
    expect(page.locator("#catalog-age")).to_contain_text("From Kitsu")
    results = page.locator("#results > li")
    expect(results.first).to_be_visible()
    assert 1 < results.count() <= 20
    # Each result links its anime page and offers to add it.
    first = results.first
    title = first.get_by_role("link").inner_text().strip()
    expect(first.get_by_role("button", name=f"Add {title} to your list")).to_be_visible()
    first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/anime/\d+/$"))
    expect(page.get_by_role("heading", level=2)).to_have_text(title)
    expect(page.get_by_role("heading", name="Not in your list")).to_be_visible()


def test_a_season_is_chosen_with_the_season_form(
    page: Page, live_server: Any, enter_as: Any, make_user: Any, kitsu: Any
) -> None:
    enter_as(page, make_user())
    page.goto(f"{live_server.url}/")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Season").click()

    # The current season first (the sandbox's data is fixed: it may have nothing then).
    season, year = catalog.current_season(timezone.now().date())
    expect(page.get_by_role("heading", level=2)).to_have_text(f"{season.title()} {year}")
    expect(page.locator("#catalog-age")).to_contain_text("From Kitsu")

    form = page.get_by_role("form", name="Choose a season")
    form.get_by_label("Season").select_option(label="Spring")
    form.get_by_label("Year").fill("1998")
    form.get_by_role("button", name="Show").click()

    expect(page).to_have_url(re.compile(r"/anime/season/\?season=spring&year=1998$"))
    expect(page.get_by_role("heading", level=2)).to_have_text("Spring 1998")
    expect(page.locator("#results > li").filter(has_text=BEBOP).first).to_be_visible()
    expect(page.locator("#results > li .muted")).to_contain_text(
        [re.compile(r", 1998$")] * page.locator("#results > li").count()
    )
    expect(form.get_by_label("Year")).to_have_value("1998")


def test_on_a_phone_no_page_is_wider_than_the_screen(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    entry = (
        LibraryEntry.objects.filter(user=user, anime__nsfw=False)
        .select_related("anime")
        .order_by("anime__title", "pk")
        .first()
    )
    enter_as(page, user)
    page.set_viewport_size({"width": 360, "height": 800})
    wider = {}
    for path in (
        "/",
        "/library/",
        f"/anime/{entry.anime.kitsu_id}/",
        f"/anime/{BEBOP_ID}/",
        "/anime/search/?q=Cowboy+Bebop",
        "/anime/trending/",
        "/anime/season/?season=spring&year=1998",
        f"/library/{entry.anime.kitsu_id}/remove/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None, path
        assert response.ok, (path, response.status)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 360:
            wider[path] = width
    assert wider == {}, "pages wider than a 360 px screen (path: width)"
