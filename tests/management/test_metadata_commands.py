"""The metadata commands against the sandbox over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def run_json(*args: str):
    return json.loads(run(*args, "--json"))


def test_search_prints_a_table_of_matches(kitsu):
    output = run("kitsu_search", "a", "--limit", "5")
    header, *rows = output.strip().splitlines()
    assert header.split()[:2] == ["ID", "Title"]
    assert 1 <= len(rows) <= 5


def test_search_json_uses_revenge_field_names(kitsu):
    results = run_json("kitsu_search", "a", "--limit", "3")
    assert results
    for anime in results:
        assert isinstance(anime["kitsu_id"], int)
        assert {"title", "title_en", "episode_count", "kitsu_score", "poster_url"} <= set(anime)


def test_anime_json_includes_external_ids(kitsu):
    anime = run_json("kitsu_anime", "1")
    assert anime["kitsu_id"] == 1
    assert {"mal_id", "anilist_id", "anidb_id", "tvdb_id"} <= set(anime)
    assert anime["kitsu_score"] is None or 0 <= anime["kitsu_score"] <= 100


def test_anime_details_are_human_readable(kitsu):
    output = run("kitsu_anime", "1")
    assert output.splitlines()[0].split() == ["kitsu_id", "1"]


def test_trending_respects_the_limit(kitsu):
    assert len(run_json("kitsu_trending", "--limit", "3")) == 3


def test_season_lists_only_that_seasons_anime(kitsu):
    year = run_json("kitsu_anime", "1")["start_date"][:4]
    results = run_json("kitsu_season", "winter", year)
    for anime in results:
        assert anime["start_date"] is not None


@pytest.mark.django_db
def test_lookup_finds_the_kitsu_anime_for_a_mal_id(kitsu):
    anime = run_json("kitsu_anime", "1")
    if anime["mal_id"] is None:
        pytest.skip("anime 1 has no MyAnimeList mapping in this seed")
    found = run_json("kitsu_lookup", "myanimelist/anime", str(anime["mal_id"]))
    assert found["kitsu_id"] == 1
    assert run_json("kitsu_lookup", "mal", str(anime["mal_id"]))["kitsu_id"] == 1


@pytest.mark.django_db
def test_lookup_of_an_unmapped_id_fails_clearly(kitsu):
    with pytest.raises(CommandError, match="no anime mapped"):
        run("kitsu_lookup", "anidb", "999999999")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("kitsu_lookup", "bogus", "1"), "Unknown site"),
        (("kitsu_lookup", "mal", "abc"), "are numbers"),
        (("kitsu_anime", "99999999"), "no such anime"),
        (("kitsu_search", "   "), "empty"),
    ],
)
def test_bad_input_raises_a_clear_command_error(kitsu, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def cli(*args: str, api_url: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        ENV_FILE=str(ROOT / "tests" / "test.env"),
        KITSU_API_URL=api_url,
        KITSU_OAUTH_URL=api_url.replace("/edge", "/oauth"),
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_unreachable_kitsu_is_one_line_on_stderr_and_exit_1(refused_url):
    result = cli("kitsu_trending", api_url=f"{refused_url}/api/edge")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "could not be reached" in lines[0]
    assert "Traceback" not in result.stderr


def test_non_numeric_id_is_one_line_on_stderr_and_exit_2(sandbox):
    result = cli("kitsu_anime", "abc", api_url=sandbox.api_url)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "invalid Kitsu anime id" in result.stderr


def test_cli_json_is_one_document_on_stdout(sandbox):
    result = cli("kitsu_anime", "1", "--json", api_url=sandbox.api_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kitsu_id"] == 1
