"""`manage.py kitsu_export`: a backup of a user's library as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from kitsu_sync.models import Anime, LibraryEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(make_user: Any) -> None:
    user = make_user("alice")
    bebop = Anime.objects.create(
        kitsu_id=1, title="Cowboy Bebop", mal_id=1, anilist_id=1, anidb_id=23, tvdb_id=76885
    )
    unmapped = Anime.objects.create(kitsu_id=48000, title='Ōkami, "Kakushi"')
    LibraryEntry.objects.create(
        user=user,
        anime=bebop,
        status="completed",
        progress=26,
        score=90,
        rewatch_count=1,
        notes="Again, with feeling",
        started_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        kitsu_entry_id=35000001,
    )
    LibraryEntry.objects.create(user=user, anime=unmapped, status="plan_to_watch", progress=0)
    other = make_user("bob")
    LibraryEntry.objects.create(user=other, anime=bebop, status="watching", progress=3)


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("kitsu_export", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_json_has_one_record_per_entry_with_the_anime_ids(library: None) -> None:
    records = json.loads(export("alice"))

    assert [r["title"] for r in records] == ["Cowboy Bebop", 'Ōkami, "Kakushi"']
    bebop = records[0]
    assert bebop == {
        "anime_kitsu_id": 1,
        "title": "Cowboy Bebop",
        "mal_id": 1,
        "anilist_id": 1,
        "anidb_id": 23,
        "tvdb_id": 76885,
        "status": "completed",
        "progress": 26,
        "score": 90,
        "rewatching": False,
        "rewatch_count": 1,
        "notes": "Again, with feeling",
        "private": False,
        "started_at": "2024-01-02T03:04:05+00:00",
        "finished_at": None,
        "kitsu_entry_id": 35000001,
    }
    assert records[1]["mal_id"] is None


def test_csv_has_a_header_and_one_row_per_entry(library: None) -> None:
    rows = list(csv.DictReader(io.StringIO(export("alice", "--format", "csv"))))

    assert len(rows) == 2
    assert rows[0]["anime_kitsu_id"] == "1"
    assert rows[0]["anidb_id"] == "23"
    assert rows[1]["title"] == 'Ōkami, "Kakushi"'
    assert rows[1]["tvdb_id"] == ""


def test_an_unknown_user_is_one_clear_error(library: None) -> None:
    with pytest.raises(CommandError, match=r"^Unknown user: ghost\.$"):
        export("ghost")
