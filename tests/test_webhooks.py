"""What a media server's webhook says happened (kitsu_sync.webhooks), read from payloads shaped
as Jellyfin, Plex and Emby send them (tests/webhook_payloads.py says where each shape is from)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import RequestFactory

from kitsu_sync.media_servers import MediaIds
from kitsu_sync.webhooks import PARSERS, WebhookError, parse_emby, parse_jellyfin, parse_plex
from tests.webhook_payloads import (
    EMBY_AUDIO_STOP,
    EMBY_EPISODE_MARKPLAYED,
    EMBY_EPISODE_START,
    EMBY_EPISODE_STOP,
    EMBY_MOVIE_STOP,
    EMBY_SPECIAL_STOP,
    JELLYFIN_AUDIO_STOP,
    JELLYFIN_MOVIE_STOP,
    JELLYFIN_PLAYBACK_START,
    JELLYFIN_PLAYBACK_STOP,
    JELLYFIN_USER_DATA_SAVED,
    PLEX_EPISODE_PLAY,
    PLEX_EPISODE_SCROBBLE,
    PLEX_EPISODE_STOP,
    PLEX_HAMA_ANIDB_EPISODE,
    PLEX_HAMA_TVDB_EPISODE,
    PLEX_MOVIE_SCROBBLE,
    PLEX_THETVDB_EPISODE,
    PLEX_TRACK_PLAY,
    TEMPLATE_PATH,
    emby_multipart,
    emby_payload,
    jellyfin_all_properties,
    jellyfin_template,
    plex_multipart,
    plex_payload,
)

THRESHOLD = 85.0


def jellyfin(sample: dict[str, Any] = JELLYFIN_PLAYBACK_STOP, **overrides: Any):
    """Read as the receiver gets it: the Send All Properties JSON, as text."""
    return parse_jellyfin(
        json.dumps(jellyfin_all_properties(sample, **overrides)), threshold=THRESHOLD
    )


# --- Jellyfin ---------------------------------------------------------------------------------


def test_a_jellyfin_episode_played_to_completion_counts_with_the_episodes_own_ids() -> None:
    playback = jellyfin()

    assert (playback.source, playback.event, playback.counts) == ("jellyfin", "PlaybackStop", True)
    assert playback.why == "played to completion"
    assert playback.kind == "episode"
    assert (playback.show_title, playback.title) == ("Baki Hanma", "The World's Strongest Senior")
    assert (playback.season, playback.episode, playback.absolute) == (1, 1, False)
    # The plugin sends the episode's ids only: they are no show's, the show is asked by SeriesId.
    assert playback.item_ids == MediaIds(tvdb=8530933, imdb="tt14765720")
    assert playback.show_ids == MediaIds()
    assert playback.series_key == "6213b704a0d954293110f4d561b0f614"
    assert (playback.user_name, playback.user_key) == ("mika", "d408915d77774584880647012f0c3306")


@pytest.mark.parametrize(
    ("position", "threshold", "counts", "why"),
    [
        (14_400_000_000, 85, True, "stopped at 96% (at least 85% counts)"),
        (12_750_000_000, 85, True, "stopped at 85% (at least 85% counts)"),
        (14_400_000_000, 97, False, "stopped at 96%, before 97%: not counted as watched"),
        (7_500_000_000, 85, False, "stopped at 50%, before 85%: not counted as watched"),
        (0, 85, False, "stopped at 0%, before 85%: not counted as watched"),
    ],
)
def test_a_jellyfin_stop_not_played_to_completion_counts_from_the_threshold(
    position: int, threshold: float, counts: bool, why: str
) -> None:
    body = jellyfin_all_properties(PlayedToCompletion=False, PlaybackPositionTicks=position)

    playback = parse_jellyfin(body, threshold=threshold)

    assert (playback.counts, playback.why) == (counts, why)


def test_a_jellyfin_stop_with_no_runtime_is_not_counted_and_says_so() -> None:
    playback = jellyfin(PlayedToCompletion=False, RunTimeTicks=0)

    assert not playback.counts
    assert playback.why == "stopped at an unknown point, before 85%: not counted as watched"


@pytest.mark.parametrize(
    ("played", "reason", "counts", "why"),
    [
        (True, "TogglePlayed", True, "marked played (TogglePlayed)"),
        (True, "PlaybackFinished", True, "marked played (PlaybackFinished)"),
        (
            False,
            "TogglePlayed",
            False,
            "user data saved (TogglePlayed), not marked played: ignored",
        ),
        (
            False,
            "PlaybackProgress",
            False,
            "user data saved (PlaybackProgress), not marked played: ignored",
        ),
        (
            True,
            "UpdateUserRating",
            False,
            "user data saved (UpdateUserRating), not marked played: ignored",
        ),
    ],
)
def test_jellyfin_user_data_counts_only_when_it_marks_the_item_played(
    played: bool, reason: str, counts: bool, why: str
) -> None:
    playback = jellyfin(JELLYFIN_USER_DATA_SAVED, Played=played, SaveReason=reason)

    assert (playback.event, playback.counts, playback.why) == ("UserDataSaved", counts, why)
    assert (playback.season, playback.episode) == (1, 1)
    assert playback.item_ids == MediaIds(tvdb=8530933, imdb="tt14765720")
    assert playback.user_name == "mika"


def test_a_jellyfin_playback_start_is_ignored_with_the_reason() -> None:
    playback = jellyfin(JELLYFIN_PLAYBACK_START)

    assert not playback.counts
    assert playback.why == "PlaybackStart is not a finished watch: ignored"
    assert (playback.kind, playback.season, playback.episode) == ("episode", 1, 1)


@pytest.mark.parametrize("sample", [JELLYFIN_AUDIO_STOP, JELLYFIN_USER_DATA_SAVED])
def test_a_jellyfin_song_is_ignored_even_when_finished(sample: dict[str, Any]) -> None:
    playback = jellyfin(
        sample, ItemType="Audio", PlayedToCompletion=True, Played=True, SaveReason="TogglePlayed"
    )

    assert (playback.kind, playback.counts) == ("audio", False)
    assert playback.why == "audio is not an episode or a film: ignored"


def test_a_jellyfin_film_counts_with_its_own_ids() -> None:
    playback = jellyfin(JELLYFIN_MOVIE_STOP)

    assert (playback.counts, playback.kind) == (True, "movie")
    assert playback.item_ids == MediaIds(tmdb_movie=569094, imdb="tt9362722")
    assert (playback.series_key, playback.season, playback.episode) == (None, None, None)
    assert playback.title == "Spider-Man: Across the Spider-Verse"


def test_jellyfin_ids_of_anime_plugins_are_read_and_values_that_are_no_id_dropped() -> None:
    playback = jellyfin(Provider_anidb="23:5", Provider_anilist="16498", Provider_kitsu="7442")

    assert playback.item_ids == MediaIds(tvdb=8530933, imdb="tt14765720", anilist=16498, kitsu=7442)


def test_an_older_jellyfin_plugin_names_the_user_username() -> None:
    # Notifiers/PlaybackStopNotifier.cs @1340935 set "Username", later "NotificationUsername".
    playback = jellyfin(NotificationUsername=None, Username="mika")

    assert playback.user_name == "mika"


def test_the_template_body_is_what_handlebars_writes() -> None:
    body = jellyfin_template()

    assert '"SeriesId": "6213b704-a0d9-5429-3110-f4d561b0f614"' in body
    assert '"UserId": "d408915d-7777-4584-8806-47012f0c3306"' in body
    assert '"PlayedToCompletion": "True"' in body
    assert '"SeasonNumber": "1"' in body
    assert '"RunTimeTicks": "15000000000"' in body
    assert '"Played": ""' in body  # PlaybackStop has no Played: an empty string
    assert '"Provider_tmdb": ""' in body
    # Where the template uses {{Key}}, Handlebars.Net HTML-encodes.
    assert '"Provider_imdb": "tt&#x3D;&amp;&lt;"' in jellyfin_template(Provider_imdb="tt=&<")


@pytest.mark.parametrize(
    ("sample", "overrides"),
    [
        (JELLYFIN_PLAYBACK_STOP, {}),
        (JELLYFIN_PLAYBACK_STOP, {"PlayedToCompletion": False, "PlaybackPositionTicks": 9}),
        (JELLYFIN_PLAYBACK_START, {}),
        (JELLYFIN_USER_DATA_SAVED, {}),
        (JELLYFIN_USER_DATA_SAVED, {"Played": False}),
        (JELLYFIN_MOVIE_STOP, {}),
        (JELLYFIN_AUDIO_STOP, {}),
        (JELLYFIN_PLAYBACK_STOP, {"SeasonNumber": 0, "EpisodeNumber": 3}),
        # The plugin writes `"` as `\"` into Name and SeriesName for its templates' sake.
        (JELLYFIN_PLAYBACK_STOP, {"Name": 'The "Strongest" Senior', "SeriesName": 'Baki "Son"'}),
    ],
    ids=[
        "stop",
        "stop-early",
        "start",
        "marked-played",
        "marked-unplayed",
        "movie",
        "audio",
        "special",
        "quotes",
    ],
)
def test_the_template_and_send_all_properties_read_the_same(
    sample: dict[str, Any], overrides: dict[str, Any]
) -> None:
    from_json = jellyfin(sample, **overrides)
    from_template = parse_jellyfin(jellyfin_template(sample, **overrides), threshold=THRESHOLD)

    assert from_template == from_json


def test_a_title_with_quotes_reads_as_the_server_names_it() -> None:
    playback = jellyfin(Name='The "Strongest" Senior')

    assert playback.title == 'The "Strongest" Senior'


def test_the_documented_template_sends_every_key_the_reader_uses() -> None:
    template = TEMPLATE_PATH.read_text(encoding="utf-8")
    read = [
        "NotificationType",
        "ItemType",
        "Name",
        "SeriesName",
        "SeriesId",
        "SeasonNumber",
        "EpisodeNumber",
        "RunTimeTicks",
        "PlaybackPositionTicks",
        "PlayedToCompletion",
        "Played",
        "SaveReason",
        "NotificationUsername",
        "UserId",
        "Provider_tvdb",
        "Provider_tmdb",
        "Provider_imdb",
    ]

    assert [key for key in read if f'"{key}": "{{' not in template] == []
    assert json.loads(jellyfin_template())["NotificationType"] == "PlaybackStop"


def test_the_setup_guide_shows_the_template_as_it_is() -> None:
    guide = (TEMPLATE_PATH.parent / "scrobbling.md").read_text(encoding="utf-8")

    assert TEMPLATE_PATH.read_text(encoding="utf-8").strip() in guide


def test_an_empty_jellyfin_body_says_the_destination_has_no_template() -> None:
    # With no template and Send All Properties off, the plugin posts "" (#319).
    with pytest.raises(WebhookError) as raised:
        parse_jellyfin("", threshold=THRESHOLD)

    assert "empty" in raised.value.message
    assert "template" in raised.value.message


# --- Plex -------------------------------------------------------------------------------------


def plex(sample: dict[str, Any] = PLEX_EPISODE_SCROBBLE, **overrides: Any):
    return parse_plex(json.dumps(plex_payload(sample, **overrides)), threshold=THRESHOLD)


def test_a_plex_scrobble_counts_with_the_episodes_own_guids_not_the_shows() -> None:
    playback = plex()

    assert (playback.source, playback.event, playback.counts) == ("plex", "media.scrobble", True)
    assert playback.why == "Plex scrobbled it (played past 90%)"
    assert playback.kind == "episode"
    # imdb://tt14765720, tmdb://3087250 and tvdb://8530933 are the episode's, not Baki Hanma's.
    assert playback.item_ids == MediaIds(imdb="tt14765720", tmdb_tv=3087250, tvdb=8530933)
    assert playback.show_ids == MediaIds()
    assert playback.series_key == "40275"
    assert (playback.season, playback.episode, playback.absolute) == (1, 1, False)
    assert (playback.show_title, playback.title) == ("范马刃牙", "The World's Strongest Senior")
    assert (playback.user_name, playback.user_key) == ("播放", "31646104")


@pytest.mark.parametrize(
    ("view_offset", "counts", "why"),
    [
        (1_440_000, True, "stopped at 96% (at least 85% counts)"),
        (600_000, False, "stopped at 40%, before 85%: not counted as watched"),
    ],
)
def test_a_plex_stop_counts_from_view_offset_and_duration(
    view_offset: int, counts: bool, why: str
) -> None:
    playback = plex(PLEX_EPISODE_STOP, Metadata={"viewOffset": view_offset})

    assert (playback.event, playback.counts, playback.why) == ("media.stop", counts, why)
    assert playback.item_ids.tvdb == 8530933


@pytest.mark.parametrize("event", ["media.play", "media.pause", "media.resume", "media.rate"])
def test_plex_events_before_the_end_are_ignored_with_the_reason(event: str) -> None:
    playback = plex(PLEX_EPISODE_PLAY, event=event)

    assert not playback.counts
    assert playback.why == f"{event} is not a finished watch: ignored"
    assert playback.user_name == "播放"


def test_a_hama_tvdb_guid_gives_the_shows_tvdb_id_season_and_episode() -> None:
    playback = plex(PLEX_HAMA_TVDB_EPISODE)

    assert playback.counts
    assert playback.show_ids == MediaIds(tvdb=81797)
    assert playback.item_ids == MediaIds()  # legacy agents send no Guid list
    assert (playback.season, playback.episode, playback.absolute) == (22, 70, False)
    assert (playback.series_key, playback.show_title) == ("3484", "One Piece")
    assert (playback.user_name, playback.user_key) == ("TestUser", "12345")


def test_a_hama_anidb_guid_gives_the_shows_anidb_id_and_the_guids_numbers() -> None:
    playback = plex(PLEX_HAMA_ANIDB_EPISODE)
    without_indexes = plex(PLEX_HAMA_ANIDB_EPISODE, Metadata={"index": None, "parentIndex": None})

    assert playback.counts
    assert playback.show_ids == MediaIds(anidb=12345)
    assert (playback.season, playback.episode) == (1, 5)
    assert (without_indexes.season, without_indexes.episode) == (1, 5)
    assert playback.show_title == "Attack on Titan"
    # No grandparentRatingKey in this payload: nothing to ask Plex for.
    assert playback.series_key is None


def test_the_guids_season_and_episode_win_over_plexs_numbers() -> None:
    playback = plex(PLEX_HAMA_TVDB_EPISODE, Metadata={"parentIndex": 1, "index": 1})

    assert (playback.season, playback.episode) == (22, 70)


def test_a_legacy_guid_of_the_show_alone_is_used_with_plexs_numbers() -> None:
    playback = plex(PLEX_HAMA_TVDB_EPISODE, Metadata={"guid": "local://31444"})

    assert playback.show_ids == MediaIds(tvdb=81797)  # from grandparentGuid
    assert (playback.season, playback.episode) == (22, 70)  # parentIndex, index


def test_a_thetvdb_agent_guid_gives_the_series_season_and_episode() -> None:
    playback = plex(PLEX_THETVDB_EPISODE)

    assert playback.counts
    assert playback.show_ids == MediaIds(tvdb=81189)
    assert (playback.season, playback.episode, playback.absolute) == (1, 2, False)


def test_a_hama_guid_in_an_absolute_mode_says_the_episode_number_is_absolute() -> None:
    # HAMA's tvdb3 and tvdb4 keep absolute episode numbers (its README's table).
    guid = "com.plexapp.agents.hama://tvdb3-352408/2/41?lang=en"

    playback = plex(PLEX_HAMA_TVDB_EPISODE, Metadata={"guid": guid})

    assert playback.show_ids == MediaIds(tvdb=352408)
    assert (playback.season, playback.episode, playback.absolute) == (2, 41, True)


def test_a_guid_of_an_agent_without_ids_leaves_the_show_to_plex() -> None:
    # com.plexapp.agents.none, as in ryck/scrobblex#22.
    playback = plex(
        PLEX_HAMA_TVDB_EPISODE,
        Metadata={
            "guid": "com.plexapp.agents.none://569747/2026/41103?lang=xn",
            "grandparentGuid": "com.plexapp.agents.none://569747?lang=xn",
        },
    )

    assert playback.show_ids == MediaIds()
    assert (playback.series_key, playback.season, playback.episode) == ("3484", 22, 70)


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ("media.scrobble", "track is not an episode or a film: ignored"),
        ("media.play", "media.play is not a finished watch: ignored"),
    ],
)
def test_a_plex_music_track_is_ignored(event: str, why: str) -> None:
    playback = plex(PLEX_TRACK_PLAY, event=event)

    assert (playback.kind, playback.counts, playback.why) == ("track", False, why)
    assert playback.user_name == "elan"


def test_a_plex_film_counts_with_its_own_ids() -> None:
    playback = plex(PLEX_MOVIE_SCROBBLE)

    assert (playback.counts, playback.kind) == (True, "movie")
    assert playback.item_ids == MediaIds(tmdb_movie=569094, imdb="tt9362722")
    assert (playback.series_key, playback.season, playback.episode) == (None, None, None)


@pytest.mark.parametrize(
    ("guid", "ids"),
    [
        ("com.plexapp.agents.imdb://tt0119698?lang=en", MediaIds(imdb="tt0119698")),
        ("com.plexapp.agents.themoviedb://128?lang=en", MediaIds(tmdb_movie=128)),
        ("com.plexapp.agents.hama://anidb-7?lang=en", MediaIds(anidb=7)),
    ],
)
def test_a_film_matched_by_a_legacy_agent_counts_with_the_ids_of_its_guid(
    guid: str, ids: MediaIds
) -> None:
    playback = plex(PLEX_MOVIE_SCROBBLE, Metadata={"Guid": None, "guid": guid})

    assert (playback.counts, playback.kind) == (True, "movie")
    assert playback.item_ids == ids


def test_plex_multipart_carries_the_json_in_the_payload_field() -> None:
    body, content_type = plex_multipart(plex_payload())

    request = RequestFactory().generic("POST", "/", body, content_type=content_type)

    assert content_type.startswith("multipart/form-data; boundary=")
    assert json.loads(request.POST["payload"]) == plex_payload()
    assert parse_plex(request.POST["payload"], threshold=THRESHOLD).title == (
        "The World's Strongest Senior"
    )


# --- Emby -------------------------------------------------------------------------------------


def emby(sample: dict[str, Any] = EMBY_EPISODE_STOP, **overrides: Any):
    body = json.dumps(emby_payload(sample, **overrides), ensure_ascii=False)
    return parse_emby(body, threshold=THRESHOLD)


def test_an_emby_episode_played_to_completion_counts_with_its_provider_ids() -> None:
    playback = emby()

    assert (playback.source, playback.event, playback.counts) == ("emby", "playback.stop", True)
    assert playback.why == "played to completion"
    assert playback.kind == "episode"
    assert playback.item_ids == MediaIds(tmdb_tv=4533239)  # the episode's own TMDB id
    assert playback.show_ids == MediaIds()
    assert playback.series_key == "240202"
    assert (playback.season, playback.episode) == (1, 11)
    assert (playback.show_title, playback.title) == ("长风渡", "第 11 集")
    assert (playback.user_name, playback.user_key) == ("admin", "e6a9dd89fd954d689870e7e0e3e72947")


def test_an_emby_film_stopped_early_is_not_counted_and_says_where() -> None:
    playback = emby(EMBY_MOVIE_STOP)

    assert (playback.kind, playback.counts) == ("movie", False)
    assert playback.why == "stopped at 22%, before 85%: not counted as watched"
    assert playback.item_ids == MediaIds(tmdb_movie=569094, imdb="tt9362722")
    assert playback.series_key is None


def test_an_emby_stop_past_the_threshold_counts_without_played_to_completion() -> None:
    playback = emby(PlaybackInfo={"PlayedToCompletion": False, "PositionTicks": 26_000_000_000})

    assert playback.counts
    assert playback.why == "stopped at 93% (at least 85% counts)"


def test_an_emby_item_marked_played_counts() -> None:
    playback = emby(EMBY_EPISODE_MARKPLAYED)

    assert (playback.event, playback.counts, playback.why) == (
        "item.markplayed",
        True,
        "marked played",
    )
    assert (playback.season, playback.episode) == (1, 11)


@pytest.mark.parametrize("event", ["playback.start", "playback.pause", "item.markunplayed"])
def test_emby_events_that_are_no_finished_watch_are_ignored(event: str) -> None:
    playback = emby(EMBY_EPISODE_START, Event=event)

    assert not playback.counts
    assert playback.why == f"{event} is not a finished watch: ignored"
    assert playback.user_name == "admin"


def test_an_emby_song_is_ignored() -> None:
    playback = emby(EMBY_AUDIO_STOP)

    assert (playback.kind, playback.counts) == ("audio", False)
    assert playback.why == "audio is not an episode or a film: ignored"


def test_an_emby_special_keeps_season_zero() -> None:
    playback = emby(EMBY_SPECIAL_STOP)

    assert playback.counts
    assert (playback.season, playback.episode) == (0, 2)
    assert playback.item_ids == MediaIds(tmdb_tv=4533301)


def test_emby_multipart_carries_the_json_in_the_data_field() -> None:
    body, content_type = emby_multipart(emby_payload())

    request = RequestFactory().generic("POST", "/", body, content_type=content_type)

    assert json.loads(request.POST["data"]) == emby_payload()
    assert parse_emby(request.POST["data"], threshold=THRESHOLD).counts


# --- bodies that are no webhook -----------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(PARSERS))
@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("<html>not json</html>", "is not JSON"),
        (b"{", "is not JSON"),
        ("[1, 2]", "is not a JSON object"),
        ("null", "is not a JSON object"),
        (["a"], "is not a JSON object"),
        ("   ", "is empty"),
    ],
)
def test_a_body_that_is_no_json_object_is_refused_with_what_was_wrong(
    source: str, body: Any, says: str
) -> None:
    with pytest.raises(WebhookError) as raised:
        PARSERS[source](body, threshold=THRESHOLD)

    assert says in raised.value.message
    assert str(raised.value) == raised.value.message


def test_an_episode_number_no_show_has_is_read_as_none() -> None:
    playback = jellyfin(EpisodeNumber=10**12, SeasonNumber=10**9)

    assert (playback.season, playback.episode) == (None, None)
