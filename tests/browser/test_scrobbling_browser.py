"""A person sets up scrobbling in a real browser: creates a key on the dashboard, their media
server posts webhooks with it (over real HTTP), the entry moves on their list, and a show
Revenge could not match is matched from the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from kitsu_sync.models import LibraryEntry, MediaOverride
from tests.mapping_files import KITSU_ANIME
from tests.webhook_payloads import (
    PLEX_HAMA_ANIDB_EPISODE,
    jellyfin_template,
    plex_multipart,
    plex_payload,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def plex_scrobble(live_server: Any, key: str, episode: int) -> dict[str, Any]:
    """Cowboy Bebop's episode, as Plex with the HAMA agent posts it."""
    payload = plex_payload(
        PLEX_HAMA_ANIDB_EPISODE,
        Metadata={
            "guid": f"com.plexapp.agents.hama://anidb-23/1/{episode}?lang=en",
            "index": episode,
        },
    )
    body, content_type = plex_multipart(payload)
    response = requests.post(
        f"{live_server.url}/api/v1/webhooks/plex?key={key}",
        data=body,
        headers={"Content-Type": content_type, "User-Agent": "PlexMediaServer/1.41.0"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_person_creates_a_key_scrobbles_and_matches_an_unknown_show(
    page: Page, live_server: Any, sign_in: Any, make_user: Any, datasets: None, kitsu: Any
) -> None:
    user = make_user("carol")
    sign_in(page, "carol")

    page.get_by_label("Key name").fill("Plex at home")
    page.get_by_role("button", name="Create a key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("rvk_")
    expect(page.locator("#api-keys")).to_contain_text("Plex at home")
    expect(page.locator("#webhook-urls")).to_contain_text(f"webhooks/plex?key={key}")

    # Plex reports episode 5, then 6: the entry moves on the list page.
    assert plex_scrobble(live_server, key, 5)["outcome"] == "recorded"
    page.get_by_role("link", name="My list").click()
    row = page.locator("#library tbody tr", has_text="Cowboy Bebop")
    expect(row).to_contain_text("5 / 26")
    expect(row.locator(".kitsu-state")).to_have_attribute("data-state", "local")
    assert plex_scrobble(live_server, key, 6)["outcome"] == "recorded"
    page.reload()
    expect(row).to_contain_text("6 / 26")

    # Jellyfin reports a show with no ids Revenge knows: it waits on the dashboard.
    stored = {kitsu_id for kitsu_id, *_ in KITSU_ANIME}
    anime = next(
        a
        for a in kitsu.store.anime
        if not a.nsfw and (a.episode_count or 0) >= 3 and a.id not in stored
    )
    body = jellyfin_template(
        SeriesName="Mystery Show", EpisodeNumber=2, Provider_tvdb=None, Provider_imdb=None
    )
    answer = requests.post(
        f"{live_server.url}/api/v1/webhooks/jellyfin",
        data=body.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Api-Key": key},
        timeout=10,
    ).json()
    assert answer["outcome"] == "unmatched", json.dumps(answer)

    page.get_by_role("link", name="Dashboard").click()
    unmatched = page.locator("#unmatched li", has_text="Mystery Show")
    expect(unmatched).to_contain_text("episodes waiting: 2")

    # The person searches Kitsu for it and picks the right anime.
    unmatched.get_by_role("link", name="Find it on Kitsu").click()
    page.get_by_label("Title").fill(anime.canonical_title)
    page.get_by_role("button", name="Search Kitsu").click()
    page.get_by_role("button", name=f"Match with {anime.canonical_title}").first.click()

    expect(page.get_by_text("1 waiting episode(s) were recorded now")).to_be_visible()
    expect(page.locator("#nothing-unmatched")).to_be_visible()
    assert LibraryEntry.objects.get(user=user, anime__kitsu_id=anime.id).progress == 2
    assert MediaOverride.objects.get(user=user).kitsu_id == anime.id
    page.get_by_role("link", name="My list").click()
    expect(page.locator("#library tbody tr", has_text=anime.canonical_title)).to_contain_text("2 /")
