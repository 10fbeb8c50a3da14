"""The README's screenshots (docs/screenshots/), taken from data like the demo's: the sandbox's
demo account linked and its library imported, posters served by the sandbox.

They are tracked files, so they are written only when asked:

    SCREENSHOTS=1 ENV_FILE=tests/test.env .venv/bin/pytest tests/browser/test_screenshots_browser.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.db.models import F
from playwright.sync_api import Page, expect

from kitsu_sync.models import LibraryEntry, WatchStatus

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("SCREENSHOTS") != "1",
        reason="writes docs/screenshots/ only with SCREENSHOTS=1",
    ),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shoot(page: Page, name: str) -> None:
    """A full-page PNG of the page as it is, once every poster has loaded (lazy ones too)."""
    page.evaluate(
        "document.querySelectorAll('img[loading=lazy]').forEach(image => image.loading = 'eager')"
    )
    page.wait_for_function("[...document.images].every(image => image.complete)")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")


def test_the_readme_screenshots(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    entry = (
        LibraryEntry.objects.filter(
            user=user,
            anime__nsfw=False,
            status=WatchStatus.WATCHING,
            anime__episode_count__gt=F("progress"),
        )
        .exclude(anime__overview="")
        .select_related("anime")
        .order_by("anime__title", "pk")
        .first()
    )
    assert entry is not None
    enter_as(page, user)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.goto(f"{live_server.url}/")
    expect(page.locator("#kitsu-name")).to_be_visible()
    shoot(page, "dashboard")

    page.goto(f"{live_server.url}/library/")
    expect(page.locator("#library tbody tr").first).to_be_visible()
    shoot(page, "list")

    page.goto(f"{live_server.url}/anime/{entry.anime.kitsu_id}/")
    expect(page.locator("#your-entry")).to_be_visible()
    shoot(page, "anime")

    page.get_by_label("Find anime on Kitsu").fill(entry.anime.title.split()[0])
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results > li").first).to_be_visible()
    shoot(page, "search")
