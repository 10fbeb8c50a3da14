"""The media servers' webhooks over HTTP, in each server's own body: Jellyfin's JSON sent as
text/plain, Plex's multipart `payload` part, Emby's multipart `data` part or raw JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kitsu_sync.models import LibraryEntry, MediaServer, MediaServerKind, UnmatchedItem
from tests import fake_media_server
from tests.api.support import KeyedClient, assert_problem
from tests.webhook_payloads import (
    EMBY_AUDIO_STOP,
    EMBY_EPISODE_START,
    EMBY_MOVIE_STOP,
    EMBY_SPECIAL_STOP,
    JELLYFIN_AUDIO_STOP,
    JELLYFIN_PLAYBACK_START,
    JELLYFIN_USER_DATA_SAVED,
    PLEX_EPISODE_PLAY,
    PLEX_HAMA_ANIDB_EPISODE,
    PLEX_THETVDB_EPISODE,
    PLEX_TRACK_PLAY,
    emby_multipart,
    emby_payload,
    jellyfin_all_properties,
    jellyfin_template,
    plex_multipart,
    plex_payload,
)

pytestmark = pytest.mark.django_db

# The Jellyfin sample's series (its SeriesId, 32 hex digits as the API gives it).
JELLYFIN_SERIES = "6213b704a0d954293110f4d561b0f614"
EMBY_SERIES = "240202"


def post_jellyfin(api: KeyedClient, body: str, **headers: str) -> Any:
    """As the Webhook plugin posts: the rendered body as text/plain; charset=utf-8."""
    return api.client.post(
        "/api/v1/webhooks/jellyfin",
        data=body.encode(),
        content_type="text/plain; charset=utf-8",
        headers={"X-Api-Key": api.key, **headers},
    )


def post_plex(api: KeyedClient, payload: dict[str, Any], *, key: str | None = None) -> Any:
    """As Plex posts: multipart/form-data, the key in the URL (Plex sends no custom headers)."""
    body, content_type = plex_multipart(payload)
    return api.client.generic(
        "POST",
        f"/api/v1/webhooks/plex?key={api.key if key is None else key}",
        body,
        content_type=content_type,
    )


def post_emby(api: KeyedClient, payload: dict[str, Any], *, multipart: bool = True) -> Any:
    if multipart:
        body, content_type = emby_multipart(payload)
    else:
        body, content_type = json.dumps(payload).encode(), "application/json"
    return api.client.generic(
        "POST",
        "/api/v1/webhooks/emby",
        body,
        content_type=content_type,
        headers={"X-Api-Key": api.key},
    )


def answered(response: Any, outcome: str) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["outcome"] == outcome, answer
    return answer


@pytest.fixture
def jellyfin_server(api: KeyedClient) -> Iterator[Any]:
    """The user's Jellyfin, which knows the sample's series as TheTVDB 76885 (Cowboy Bebop)."""
    with fake_media_server.serving("jellyfin") as server:
        server.items[JELLYFIN_SERIES] = fake_media_server.jellyfin_series(
            JELLYFIN_SERIES, Tvdb="76885"
        )
        MediaServer.objects.create(
            user=api.user,
            kind=MediaServerKind.JELLYFIN,
            name="Home",
            url=server.url,
            api_key=fake_media_server.API_KEY,
        )
        yield server


@pytest.fixture
def emby_server(api: KeyedClient) -> Iterator[Any]:
    """The user's Emby, which knows the sample's series as TheTVDB 72025 (Crest of the Stars)."""
    with fake_media_server.serving("emby") as server:
        server.items[EMBY_SERIES] = fake_media_server.jellyfin_series(EMBY_SERIES, Tvdb="72025")
        MediaServer.objects.create(
            user=api.user,
            kind=MediaServerKind.EMBY,
            name="Emby",
            url=server.url,
            api_key=fake_media_server.API_KEY,
            server_user_id="e6a9dd89fd954d689870e7e0e3e72947",
        )
        yield server


# --- Jellyfin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "render", [jellyfin_template, jellyfin_all_properties], ids=["template", "all-properties"]
)
def test_a_jellyfin_episode_played_to_the_end_moves_the_entry_via_the_servers_series_ids(
    api: KeyedClient, datasets: None, jellyfin_server: Any, render: Callable[..., Any]
) -> None:
    body = render(EpisodeNumber=5)
    text = body if isinstance(body, str) else json.dumps(body)

    answer = answered(post_jellyfin(api, text), "recorded")

    assert (answer["kitsu_anime_id"], answer["episode"]) == (1, 5)
    assert LibraryEntry.objects.get(user=api.user, anime__kitsu_id=1).progress == 5
    # Revenge asked the server for the show (the episode's own ids are not the show's).
    assert any(JELLYFIN_SERIES in path for path in jellyfin_server.requests)


def test_a_stop_and_a_mark_played_of_one_episode_count_once(
    api: KeyedClient, datasets: None, jellyfin_server: Any
) -> None:
    stop = answered(post_jellyfin(api, jellyfin_template(EpisodeNumber=5)), "recorded")
    marked = answered(
        post_jellyfin(
            api,
            jellyfin_template(
                JELLYFIN_USER_DATA_SAVED, EpisodeNumber=5, SaveReason="PlaybackFinished"
            ),
        ),
        "repeated",
    )

    assert stop["entry"]["progress"] == marked["entry"]["progress"] == 5


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (jellyfin_template(JELLYFIN_PLAYBACK_START), "not a finished watch"),
        (jellyfin_template(JELLYFIN_AUDIO_STOP), "not an episode or a film"),
        (
            jellyfin_template(PlayedToCompletion=False, PlaybackPositionTicks=3_000_000_000),
            "before 85%",
        ),
    ],
)
def test_jellyfin_events_that_are_not_a_finished_episode_are_acknowledged_and_ignored(
    api: KeyedClient, body: str, why: str
) -> None:
    answer = answered(post_jellyfin(api, body), "ignored")

    assert why in answer["reason"]
    assert not LibraryEntry.objects.exists()


def test_a_jellyfin_episode_without_provider_ids_or_a_server_is_kept_unmatched(
    api: KeyedClient, datasets: None, kitsu: Any
) -> None:
    body = jellyfin_template(
        SeriesName="A Show Nobody Catalogued", Provider_tvdb=None, Provider_imdb=None
    )

    answer = answered(post_jellyfin(api, body), "unmatched")

    item = UnmatchedItem.objects.get(user=api.user, pk=answer["unmatched_id"])
    assert item.title == "A Show Nobody Catalogued"
    assert item.source == "jellyfin"
    assert item.details["server_user"] == "mika"
    assert [w["episode"] for w in item.episodes] == [1]


def test_an_empty_jellyfin_body_says_to_set_the_template(api: KeyedClient) -> None:
    body = assert_problem(post_jellyfin(api, ""), 400, "Jellyfin")

    assert "template" in body["detail"]


# --- Plex -------------------------------------------------------------------------------------


def test_a_plex_scrobble_from_hamas_anidb_guid_moves_the_entry(
    api: KeyedClient, datasets: None
) -> None:
    payload = plex_payload(
        PLEX_HAMA_ANIDB_EPISODE,
        Metadata={"guid": "com.plexapp.agents.hama://anidb-23/1/5?lang=en"},
    )

    answer = answered(post_plex(api, payload), "recorded")

    assert (answer["kitsu_anime_id"], answer["episode"]) == (1, 5)


def test_a_plex_episode_of_a_season_kitsu_splits_in_two_goes_to_the_second_entry(
    api: KeyedClient, datasets: None
) -> None:
    payload = plex_payload(
        PLEX_THETVDB_EPISODE,
        Metadata={
            "guid": "com.plexapp.agents.thetvdb://267440/3/13?lang=en",
            "parentIndex": 3,
            "index": 13,
        },
    )

    answer = answered(post_plex(api, payload), "recorded")

    assert (answer["kitsu_anime_id"], answer["episode"]) == (41982, 1)


def test_a_plex_episode_numbered_absolutely_by_hama_finds_its_season(
    api: KeyedClient, datasets: None
) -> None:
    payload = plex_payload(
        PLEX_HAMA_ANIDB_EPISODE,
        Metadata={"guid": "com.plexapp.agents.hama://tvdb3-83692/2/15?lang=en"},
    )

    answer = answered(post_plex(api, payload), "recorded")

    assert (answer["kitsu_anime_id"], answer["episode"]) == (197, 15)


@pytest.mark.parametrize(
    ("payload", "why"),
    [(PLEX_EPISODE_PLAY, "not a finished watch"), (PLEX_TRACK_PLAY, "")],
    ids=["media.play", "music"],
)
def test_plex_events_that_are_not_a_finished_episode_are_acknowledged(
    api: KeyedClient, payload: dict[str, Any], why: str
) -> None:
    answer = answered(post_plex(api, payload), "ignored")

    assert why in answer["reason"]


def test_a_plex_webhook_of_a_server_user_the_key_does_not_serve_is_ignored(
    keyed: Callable[..., KeyedClient], datasets: None
) -> None:
    api = keyed(server_users=("alice",))
    payload = plex_payload(
        PLEX_HAMA_ANIDB_EPISODE,
        Account={"title": "TestUser"},
        Metadata={"guid": "com.plexapp.agents.hama://anidb-23/1/5?lang=en"},
    )

    answer = answered(post_plex(api, payload), "ignored")

    assert "'TestUser'" in answer["reason"]
    assert not LibraryEntry.objects.exists()


def test_a_plex_webhook_with_a_bad_key_is_401(api: KeyedClient) -> None:
    assert_problem(post_plex(api, PLEX_EPISODE_PLAY, key="rvk_0123456789ab_" + "x" * 43), 401)


def test_a_plex_form_without_its_payload_part_is_400(api: KeyedClient) -> None:
    response = api.client.post(f"/api/v1/webhooks/plex?key={api.key}", {"thumb": "not the payload"})

    body = assert_problem(response, 400, "Plex")
    assert "`payload`" in body["detail"]


# --- Emby -------------------------------------------------------------------------------------


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "json"])
def test_an_emby_special_of_season_zero_moves_the_special_anime(
    api: KeyedClient, datasets: None, emby_server: Any, multipart: bool
) -> None:
    payload = emby_payload(EMBY_SPECIAL_STOP, Item={"IndexNumber": 1})

    answer = answered(post_emby(api, payload, multipart=multipart), "recorded")

    assert (answer["kitsu_anime_id"], answer["episode"]) == (266, 1)


def test_an_emby_film_is_found_by_its_own_ids(api: KeyedClient, datasets: None) -> None:
    payload = emby_payload(
        EMBY_MOVIE_STOP,
        Item={"ProviderIds": {"Imdb": "tt0119698", "Tmdb": "128"}, "Name": "Princess Mononoke"},
        PlaybackInfo={"PlayedToCompletion": True},
    )

    answer = answered(post_emby(api, payload), "recorded")

    assert answer["kitsu_anime_id"] == 142
    assert answer["entry"]["status"] == "completed"


@pytest.mark.parametrize(
    ("payload", "why"),
    [(EMBY_EPISODE_START, "not a finished watch"), (EMBY_AUDIO_STOP, "not an episode")],
    ids=["playback.start", "music"],
)
def test_emby_events_that_are_not_a_finished_episode_are_acknowledged(
    api: KeyedClient, payload: dict[str, Any], why: str
) -> None:
    answer = answered(post_emby(api, payload), "ignored")

    assert why in answer["reason"]


def test_a_film_kitsu_does_not_know_is_unmatched_not_guessed(
    api: KeyedClient, datasets: None, kitsu: Any
) -> None:
    payload = emby_payload(EMBY_MOVIE_STOP, PlaybackInfo={"PlayedToCompletion": True})

    answer = answered(post_emby(api, payload), "unmatched")

    assert answer["kitsu_anime_id"] is None
    assert not LibraryEntry.objects.exists()


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_a_malformed_emby_body_is_a_400_problem(api: KeyedClient, body: bytes) -> None:
    response = api.client.generic(
        "POST",
        "/api/v1/webhooks/emby",
        body,
        content_type="application/json",
        headers={"X-Api-Key": api.key},
    )

    problem = assert_problem(response, 400, "Emby")
    assert "docs/scrobbling.md" in problem["detail"]
