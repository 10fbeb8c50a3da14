"""bulk_write: the same rows as bulk_create, on PostgreSQL and SQLite (SQLite's run is
tests/services/test_import.py::test_the_import_writes_the_same_on_sqlite_the_embedded_database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.db import DataError, transaction

from kitsu_sync.db import bulk_write
from kitsu_sync.models import Anime, LibraryEntry

pytestmark = pytest.mark.django_db

AWKWARD_TEXT = 'It\'s "quoted", back\\slashed, 100% %s {0} ナルト 🍥\nand a second line'


def awkward_anime(kitsu_id: int) -> Anime:
    return Anime(
        kitsu_id=kitsu_id,
        slug="awkward",
        title=AWKWARD_TEXT,
        title_en="",
        title_native="鋼の錬金術師",
        overview=AWKWARD_TEXT * 20,
        episode_count=2**31 - 1,
        episode_duration=0,
        airing_status="finished",
        kitsu_score=Decimal("85.25"),
        kitsu_rank=1,
        kitsu_popularity=None,
        poster_url="https://media.kitsu.app/anime/1/poster_image/large-abc.jpeg?x=1&y='2'",
        backdrop_url="",
        subtype="TV",
        nsfw=True,
        start_date=date(1998, 4, 3),
        end_date=None,
        kitsu_updated_at=datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC),
        mal_id=2**63 - 1,
        anilist_id=None,
        anidb_id=23,
        tvdb_id=76885,
    )


def awkward_entry(
    user: Any, anime: Anime, kitsu_entry_id: int | None, **overrides: Any
) -> LibraryEntry:
    values = dict(
        user=user,
        anime=anime,
        status="watching",
        progress=12,
        score=None,
        rewatching=True,
        rewatch_count=3,
        notes=AWKWARD_TEXT,
        private=False,
        started_at=datetime(2020, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        finished_at=None,
        progressed_at=datetime(2021, 6, 7, 8, 9, 10, 999000, tzinfo=UTC),
        kitsu_entry_id=kitsu_entry_id,
        kitsu_updated_at=datetime(2021, 6, 7, 8, 9, 10, 999000, tzinfo=UTC),
        synced_values={"notes": AWKWARD_TEXT, "score": None, "nested": [1, 2.5, True, {}]},
        local_updated_at=None,
    )
    return LibraryEntry(**{**values, **overrides})


def stored_columns(model: Any, pk: int, *, leave_out: tuple[str, ...]) -> dict[str, Any]:
    names = [f.attname for f in model._meta.concrete_fields if f.attname not in leave_out]
    return model.objects.filter(pk=pk).values(*names).get()


def test_bulk_write_stores_every_column_as_bulk_create_does(make_user: Any) -> None:
    user = make_user("alice")
    by_django = [awkward_anime(1), Anime(kitsu_id=2)]
    Anime.objects.bulk_create(by_django)
    ours = [awkward_anime(3), Anime(kitsu_id=4)]

    bulk_write(Anime, ours)

    bookkeeping = ("id", "kitsu_id", "created_at", "updated_at")
    for theirs, mine in zip(by_django, ours, strict=True):
        assert mine.pk is not None
        assert not mine._state.adding
        assert stored_columns(Anime, mine.pk, leave_out=bookkeeping) == stored_columns(
            Anime, theirs.pk, leave_out=bookkeeping
        )
        assert Anime.objects.get(pk=mine.pk).kitsu_id == mine.kitsu_id
    entries_by_django = [
        awkward_entry(user, by_django[0], 1),
        awkward_entry(user, by_django[1], None, synced_values=None, status="completed"),
    ]
    LibraryEntry.objects.bulk_create(entries_by_django)
    entries = [
        awkward_entry(user, ours[0], 2),
        awkward_entry(user, ours[1], None, synced_values=None, status="completed"),
    ]

    bulk_write(LibraryEntry, entries)

    bookkeeping = ("id", "anime_id", "kitsu_entry_id", "created_at", "updated_at")
    for theirs, mine in zip(entries_by_django, entries, strict=True):
        assert stored_columns(LibraryEntry, mine.pk, leave_out=bookkeeping) == stored_columns(
            LibraryEntry, theirs.pk, leave_out=bookkeeping
        )
        # SQL NULL, not a JSON null, as Django stores None.
        sql_null = LibraryEntry.objects.filter(synced_values__isnull=True)
        assert sql_null.filter(pk=mine.pk).exists() == sql_null.filter(pk=theirs.pk).exists()
        stored = LibraryEntry.objects.get(pk=mine.pk)
        assert (stored.anime_id, stored.kitsu_entry_id) == (mine.anime_id, mine.kitsu_entry_id)
        assert stored.created_at == mine.created_at
        assert stored.updated_at == mine.updated_at


def test_bulk_write_refuses_a_value_too_long_for_its_column_as_bulk_create_does() -> None:
    too_long = "x" * 501  # the title column holds 500 characters

    outcomes = []
    for write in (Anime.objects.bulk_create, partial(bulk_write, Anime)):
        try:
            with transaction.atomic():
                write([Anime(kitsu_id=1, title=too_long)])
                outcomes.append(Anime.objects.get().title)
                transaction.set_rollback(True)
        except DataError:
            outcomes.append("refused")

    # PostgreSQL refuses it both ways; SQLite keeps it whole both ways.
    assert outcomes in (["refused", "refused"], [too_long, too_long])


def test_bulk_write_gives_each_new_row_its_own_primary_key() -> None:
    anime = [Anime(kitsu_id=kitsu_id, title=f"Title {kitsu_id}") for kitsu_id in (30, 10, 20)]

    bulk_write(Anime, anime)

    assert {a.pk: a.title for a in anime} == dict(Anime.objects.values_list("pk", "title"))


def test_bulk_write_upsert_changes_only_the_fields_it_names() -> None:
    stored = awkward_anime(7)
    stored.save()
    created_at, updated_at = stored.created_at, stored.updated_at
    incoming = Anime(kitsu_id=7, title="New title", slug="new-slug", kitsu_score=Decimal("1.50"))

    bulk_write(Anime, [incoming], unique_field="kitsu_id", update_fields=["title", "updated_at"])

    assert incoming.pk == stored.pk
    row = Anime.objects.get(pk=stored.pk)
    assert row.title == "New title"
    assert row.updated_at > updated_at
    assert (row.slug, row.kitsu_score, row.created_at) == ("awkward", Decimal("85.25"), created_at)
    assert Anime.objects.count() == 1


def test_bulk_write_upsert_on_the_primary_key_updates_stored_rows_in_place(
    make_user: Any,
) -> None:
    user = make_user("alice")
    anime = Anime.objects.create(kitsu_id=1)
    entry = awkward_entry(user, anime, 99)
    entry.save()
    entry.notes, entry.progress, entry.status = "Rewritten", 13, "completed"

    bulk_write(LibraryEntry, [entry], unique_field="id", update_fields=["notes", "progress"])

    row = LibraryEntry.objects.get()
    assert (row.pk, row.notes, row.progress, row.status) == (entry.pk, "Rewritten", 13, "watching")
