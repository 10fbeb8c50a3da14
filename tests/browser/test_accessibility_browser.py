"""Every page through axe-core (node_modules/axe-core, pinned in package-lock.json): no
violation of impact "serious" or "critical" on any of them.

Each page is audited as a person finds it (the list with an entry's edit form open and a change
Kitsu refused, an anime page in the list and one not, results with a show in the list...). All
findings, the lesser ones too, are written to test-artifacts/axe-<persona>.json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db.models import F
from playwright.sync_api import Page, expect

from kitsu_sync.models import LibraryEntry, SyncRun, WatchStatus
from kitsu_sync.services import outbox
from kitsu_sync.services.watch import record_watch_progress
from tests.browser import axe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Audit:
    """The findings of each page audited, by name."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.found: dict[str, list[dict[str, Any]]] = {}

    def visit(self, name: str, path: str, *, then: Callable[[Page], None] | None = None) -> None:
        response = self.page.goto(f"{self.base_url}{path}")
        assert response is not None, f"{name}: {path} answered nothing"
        assert response.ok, f"{name}: {path} answered {response.status}"
        if then is not None:
            then(self.page)
        self.found[name] = axe.violations(self.page)

    def check(self, persona: str) -> None:
        axe.ARTIFACTS.mkdir(exist_ok=True)
        (axe.ARTIFACTS / f"axe-{persona}.json").write_text(json.dumps(self.found, indent=2))
        blocking = {name: axe.blocking(found) for name, found in self.found.items()}
        report = "\n".join(
            f"{name}:\n{axe.describe(found)}" for name, found in blocking.items() if found
        )
        assert not report, f"serious or critical accessibility violations:\n{report}"


def test_the_pages_of_a_person_not_linked_yet(
    page: Page, live_server: Any, enter_as: Any, make_user: Any, kitsu: Any
) -> None:
    audit = Audit(page, live_server.url)
    audit.visit("sign-in page", "/accounts/login/")
    enter_as(page, make_user())
    audit.visit(
        "dashboard, not linked",
        "/",
        then=lambda page: expect(
            page.get_by_role("heading", name="Link your Kitsu account")
        ).to_be_visible(),
    )
    audit.visit("list, empty", "/library/")
    audit.check("not-linked")


def test_the_pages_of_a_linked_person(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any, two_way: list
) -> None:
    user = imported_user("demo")
    entries = LibraryEntry.objects.filter(user=user, anime__nsfw=False).select_related("anime")
    listed = entries.filter(
        status=WatchStatus.WATCHING, anime__episode_count__gt=F("progress")
    ).order_by("anime__title", "pk")[0]
    # A change Kitsu refuses for good: the list offers to send it again, the dashboard says so.
    refused = entries.filter(anime__episode_count__isnull=True).order_by("pk")[0]
    record_watch_progress(user_id=user.pk, anime_kitsu_id=refused.anime.kitsu_id, episode=5000)
    assert outbox.deliver(user_id=user.pk).refused == 1
    enter_as(page, user)

    def open_the_refused_entry(page: Page) -> None:
        row = page.locator(f"#entry-{refused.pk}")
        expect(row.locator(".kitsu-state")).to_have_attribute("data-state", "failed")
        expect(row.get_by_role("button", name=re.compile("^Send"))).to_be_visible()
        row.locator("summary", has_text="Edit").click()
        expect(row.get_by_label("Notes")).to_be_visible()

    audit = Audit(page, live_server.url)
    audit.visit("dashboard, linked", "/")
    audit.visit("list", "/library/")
    audit.visit(
        "list, a refused change and its edit form open",
        "/library/?" + urlencode({"sort": "-updated", "q": refused.anime.title}),
        then=open_the_refused_entry,
    )
    audit.visit("anime page, in the list", f"/anime/{listed.anime.kitsu_id}/")
    audit.visit("anime page, not in the list", "/anime/1/")
    word = listed.anime.title.split()[0]
    audit.visit(
        "search results",
        "/anime/search/?" + urlencode({"q": word}),
        then=lambda page: expect(page.locator("#results .in-list").first).to_be_visible(),
    )
    audit.visit("trending", "/anime/trending/")
    audit.visit("season", "/anime/season/?season=spring&year=1998")
    audit.visit("edit page (without JavaScript)", f"/library/{listed.anime.kitsu_id}/edit/")
    audit.visit("remove confirmation", f"/library/{listed.anime.kitsu_id}/remove/")
    audit.visit("the import's record", f"/kitsu/syncs/{SyncRun.objects.get(user=user).pk}/")
    audit.visit("unlink confirmation", "/kitsu/unlink/")
    audit.check("linked")
