"""`kitsu_lookup` through the resolver: a show's season and episode, AniDB, TMDB and IMDb ids,
with how the match was found or why there is none (sandbox over real HTTP)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

# Kitsu anime 1 (Cowboy Bebop) of the test datasets is the sandbox's own.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("kitsu")]


def lookup(*args: str) -> str:
    out = StringIO()
    call_command("kitsu_lookup", *args, stdout=out)
    return out.getvalue()


def test_a_tvdb_season_and_episode_prints_the_match_and_how_it_was_found(datasets: None) -> None:
    output = lookup("tvdb", "76885", "--season", "1", "--episode", "5")

    lines = output.splitlines()
    assert lines[0] == "match       Kitsu 1, episode 5 (mapped)"
    assert any("AniDB 23" in line for line in lines if line.startswith("found by"))
    assert "Cowboy Bebop" in output


def test_json_adds_the_episode_and_the_steps_to_the_anime(datasets: None) -> None:
    found = json.loads(lookup("anidb", "23", "--episode", "5", "--json"))

    assert (found["kitsu_id"], found["episode"], found["confidence"]) == (1, 5, "mapped")
    assert found["found_by"]
    assert found["title"] == "Cowboy Bebop"


def test_tmdb_and_imdb_ids_resolve_too(datasets: None) -> None:
    by_tmdb = json.loads(lookup("tmdb", "30991", "--season", "1", "--episode", "2", "--json"))
    by_imdb = json.loads(lookup("imdb", "tt0119698", "--json"))

    assert (by_tmdb["kitsu_id"], by_tmdb["episode"]) == (1, 2)
    assert by_imdb["kitsu_id"] == 142


def test_no_match_says_why_and_what_was_tried(datasets: None) -> None:
    with pytest.raises(CommandError, match="special 2") as failure:
        lookup("tvdb", "76885", "--season", "0", "--episode", "3")

    assert "Tried:" in str(failure.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("imdb", "123"), "IMDb ids look like"), (("tvdb", "abc"), "tvdb ids are numbers")],
)
def test_bad_ids_are_clear_errors(kitsu: Any, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        lookup(*args)
