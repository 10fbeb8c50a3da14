"""What media servers call a show: Plex guids, Jellyfin/Emby provider ids, and their APIs
(a stand-in server over real HTTP)."""

from __future__ import annotations

import pytest

from kitsu_sync.media_servers import (
    MediaIds,
    MediaServerClient,
    MediaServerError,
    parse_plex_guid,
    plex_guid_ids,
    provider_ids,
)
from tests import fake_media_server
from tests.fake_media_server import API_KEY


@pytest.mark.parametrize(
    ("guid", "ids", "season", "episode", "absolute"),
    [
        # HAMA: the show's AniDB id, then Plex's season and episode.
        ("com.plexapp.agents.hama://anidb-3651/1/1?lang=en", MediaIds(anidb=3651), 1, 1, False),
        ("com.plexapp.agents.hama://tvdb-316842/0/38?lang=en", MediaIds(tvdb=316842), 0, 38, False),
        ("com.plexapp.agents.hama://tvdb2-79895/8/1?lang=en", MediaIds(tvdb=79895), 8, 1, False),
        ("com.plexapp.agents.hama://tvdb3-352408/2/41?lang=en", MediaIds(tvdb=352408), 2, 41, True),
        ("com.plexapp.agents.hama://anidb-24?lang=da", MediaIds(anidb=24), None, None, False),
        # TheTVDB's legacy agent: series/season/episode.
        ("com.plexapp.agents.thetvdb://73871/2/15?lang=en", MediaIds(tvdb=73871), 2, 15, False),
        ("com.plexapp.agents.thetvdb://74205?lang=en", MediaIds(tvdb=74205), None, None, False),
        # New-style Guid ids.
        ("tvdb://4880756", MediaIds(tvdb=4880756), None, None, False),
        ("imdb://tt7553404", MediaIds(imdb="tt7553404"), None, None, False),
    ],
)
def test_a_plex_guid_gives_its_ids_season_and_episode(
    guid: str, ids: MediaIds, season: int | None, episode: int | None, absolute: bool
) -> None:
    parsed = parse_plex_guid(guid)

    assert parsed is not None
    assert (parsed.ids, parsed.season, parsed.episode, parsed.absolute) == (
        ids,
        season,
        episode,
        absolute,
    )


@pytest.mark.parametrize(
    "guid",
    [
        "plex://episode/5d9c15fe2df347001e43f279",
        "local://60293",
        "com.plexapp.agents.hama://unknown-12/1/1",
        # A HAMA mode whose numbering HAMA's README does not document.
        "com.plexapp.agents.hama://tvdb5-331753/0/1",
        "com.plexapp.agents.none://abc",
        "not a guid",
        "tvdb://abc",
    ],
)
def test_a_guid_naming_no_usable_id_gives_nothing(guid: str) -> None:
    assert parse_plex_guid(guid) is None


def test_a_plex_guid_list_gives_one_id_per_site() -> None:
    guids = [{"id": "imdb://tt15551010"}, {"id": "tmdb://3366778"}, {"id": "tvdb://8858893"}]

    assert plex_guid_ids(guids) == MediaIds(tvdb=8858893, tmdb_tv=3366778, imdb="tt15551010")
    assert plex_guid_ids(guids, movie=True).tmdb_movie == 3366778


def test_provider_ids_take_the_keys_every_plugin_writes_and_drop_what_is_no_id() -> None:
    ids = provider_ids(
        {"Tvdb": "267440", "Imdb": "tt2560140", "Tmdb": "1429", "AniDB": "23:5", "AniList": "16498"}
    )

    assert ids == MediaIds(tvdb=267440, imdb="tt2560140", tmdb_tv=1429, anilist=16498)
    assert provider_ids({"TheTVDB": "76885", "Shoko Series": "12"}) == MediaIds(tvdb=76885)
    assert provider_ids({"Tmdb": "128"}, movie=True) == MediaIds(tmdb_movie=128)


def test_jellyfin_is_asked_for_an_item_with_its_api_key() -> None:
    with fake_media_server.serving("jellyfin") as server:
        server.items["0b3f9e6c1c2a4f2f9e2b6c3d4e5f6a7b"] = fake_media_server.jellyfin_series(
            "0b3f9e6c1c2a4f2f9e2b6c3d4e5f6a7b", Tvdb="267440", Tmdb="1429"
        )
        client = MediaServerClient("jellyfin", server.url, API_KEY)

        item = client.item("0b3f9e6c1c2a4f2f9e2b6c3d4e5f6a7b")

    assert (item.kind, item.ids) == ("series", MediaIds(tvdb=267440, tmdb_tv=1429))


def test_emby_is_asked_as_the_configured_user() -> None:
    with fake_media_server.serving("emby") as server:
        server.items["41"] = fake_media_server.jellyfin_series("41", Tvdb="267440")
        client = MediaServerClient("emby", server.url, API_KEY, user_id="7")

        item = client.item("41")

        assert server.requests == ["/emby/Users/7/Items/41?"]
    assert item.ids == MediaIds(tvdb=267440)


def test_plex_is_asked_for_the_metadata_with_guids() -> None:
    with fake_media_server.serving("plex") as server:
        server.items["28825"] = fake_media_server.plex_show("28825", "tvdb://267440", "tmdb://1429")
        client = MediaServerClient("plex", server.url, API_KEY)

        item = client.item("28825")

        assert server.requests == ["/library/metadata/28825?includeGuids=1"]
    assert (item.kind, item.ids) == ("series", MediaIds(tvdb=267440, tmdb_tv=1429))


def test_a_refused_key_an_unknown_item_and_a_dead_server_are_clear_errors() -> None:
    with fake_media_server.serving("jellyfin") as server:
        with pytest.raises(MediaServerError, match="refused the API key"):
            MediaServerClient("jellyfin", server.url, "wrong").item("abc")
        with pytest.raises(MediaServerError, match="HTTP 404"):
            MediaServerClient("jellyfin", server.url, API_KEY).item("abc")
        url = server.url
    with pytest.raises(MediaServerError, match="could not be reached"):
        MediaServerClient("jellyfin", url, API_KEY, timeout=2).item("abc")
    with pytest.raises(MediaServerError, match="not an item id"):
        MediaServerClient("jellyfin", url, API_KEY).item("../../System/Info")
