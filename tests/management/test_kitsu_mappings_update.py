"""`kitsu_mappings_update`: loads local files or downloads, and says what it did."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from kitsu_sync.models import MappingRecord
from tests import mapping_files as files

pytestmark = pytest.mark.django_db


def update(*args: str) -> str:
    out = StringIO()
    call_command("kitsu_mappings_update", *args, stdout=out)
    return out.getvalue()


def test_local_files_load_and_the_counts_and_dates_are_printed(tmp_path: Path) -> None:
    xml, json = tmp_path / "a.xml", tmp_path / "b.json"
    xml.write_bytes(files.ANIME_LISTS)
    json.write_bytes(files.FRIBB)

    output = update("--from-file", str(xml), "--from-file", str(json))

    assert "anime-lists: loaded 10 records, published " in output
    assert "fribb: loaded 10 records, published " in output
    assert MappingRecord.objects.count() == 20
    assert "unchanged" in update("--from-file", str(xml))


def test_a_broken_file_fails_clearly_and_keeps_what_was_loaded(tmp_path: Path) -> None:
    good, broken = tmp_path / "good.json", tmp_path / "broken.json"
    good.write_bytes(files.FRIBB)
    broken.write_bytes(b'[{"anidb_id": 1,')
    update("--from-file", str(good))

    with pytest.raises(CommandError, match=r"not JSON.*kept the 10 records"):
        update("--from-file", str(broken))

    assert MappingRecord.objects.count() == 10


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not a file"):
        update("--from-file", str(tmp_path / "nothing.xml"))
