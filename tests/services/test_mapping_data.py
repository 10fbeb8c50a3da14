"""Loading the mapping datasets: from files and over HTTP, replaced whole or not at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kitsu_sync.datasets import DatasetError
from kitsu_sync.models import MappingDataset, MappingKey, MappingRecord, MappingSource
from kitsu_sync.services import mapping_data
from kitsu_sync.services.mapping_data import (
    dataset_of_file,
    datasets_due,
    load_dataset,
    update_datasets,
    update_due_datasets,
)
from tests import mapping_files as files

pytestmark = pytest.mark.django_db


class FileServer:
    """Serves `files` (path -> body) over HTTP with a Last-Modified date; counts requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.hits.append(request.path)
        body = self.files.get(request.path)
        if body is None:
            response = Response("Not Found", status=404)
        else:
            response = Response(body, headers={"Last-Modified": "Tue, 01 Dec 2026 10:00:00 GMT"})
        return response(environ, start_response)


@pytest.fixture
def file_server(settings: Any) -> Iterator[FileServer]:
    """A local web server holding both dataset files, and the URL settings pointing at it."""
    server = FileServer()
    http = make_server("127.0.0.1", 0, server, threaded=True)
    server.url = f"http://127.0.0.1:{http.server_port}"
    server.files = {
        "/anime-list-master.xml": files.ANIME_LISTS,
        "/anime-list-full.json": files.FRIBB,
    }
    settings.MAPPING_ANIME_LISTS_URL = f"{server.url}/anime-list-master.xml"
    settings.MAPPING_FRIBB_URL = f"{server.url}/anime-list-full.json"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield server
    http.shutdown()
    thread.join(timeout=10)


def write(tmp_path: Path, name: str, body: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


def records(source: str) -> int:
    return MappingRecord.objects.filter(source=source).count()


def test_both_datasets_load_from_files_recognised_by_their_content(tmp_path: Path) -> None:
    xml = write(tmp_path, "a", files.ANIME_LISTS)
    json = write(tmp_path, "b", files.FRIBB)

    results = update_datasets(paths=[json, xml])

    assert {r.source: r.records for r in results} == {"anime-lists": 10, "fribb": 10}
    assert records("anime-lists") == records("fribb") == 10
    assert MappingKey.objects.filter(site="tvdb", value="267440").count() == 8
    dataset = MappingDataset.objects.get(source="fribb")
    assert dataset.published_at is not None
    assert (dataset.records, dataset.last_error) == (10, "")


def test_a_file_of_neither_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="neither"):
        dataset_of_file(write(tmp_path, "c", b"hello"))


def test_both_datasets_download_from_their_urls(file_server: FileServer) -> None:
    results = update_datasets()

    assert [r.ok for r in results] == [True, True]
    assert sorted(file_server.hits) == ["/anime-list-full.json", "/anime-list-master.xml"]
    dataset = MappingDataset.objects.get(source="anime-lists")
    assert dataset.url.endswith("/anime-list-master.xml")
    assert dataset.published_at is not None
    assert dataset.published_at.isoformat() == "2026-12-01T10:00:00+00:00"


def test_the_same_file_again_is_not_rewritten(file_server: FileServer) -> None:
    update_datasets()
    first = set(MappingRecord.objects.values_list("pk", flat=True))

    again = update_datasets()

    assert all(r.unchanged for r in again)
    assert set(MappingRecord.objects.values_list("pk", flat=True)) == first


def test_a_failed_download_keeps_the_data_loaded_before(file_server: FileServer) -> None:
    update_datasets()
    file_server.files.pop("/anime-list-full.json")

    result = load_dataset(MappingSource.FRIBB)

    assert not result.ok
    assert "HTTP 404" in result.error
    assert records("fribb") == 10
    dataset = MappingDataset.objects.get(source="fribb")
    assert dataset.records == 10
    assert "HTTP 404" in dataset.last_error


def test_a_file_that_does_not_parse_keeps_the_data_loaded_before(
    file_server: FileServer,
) -> None:
    update_datasets()
    file_server.files["/anime-list-master.xml"] = b"<anime-list><anime anidbid='1'>"

    result = load_dataset(MappingSource.ANIME_LISTS)

    assert "not well-formed" in result.error
    assert records("anime-lists") == 10


def test_an_empty_list_keeps_the_data_loaded_before(file_server: FileServer) -> None:
    update_datasets()
    file_server.files["/anime-list-full.json"] = b"[]"

    result = load_dataset(MappingSource.FRIBB)

    assert "no records" in result.error
    assert records("fribb") == 10


def test_a_download_larger_than_the_cap_is_refused(
    file_server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mapping_data, "MAX_DOWNLOAD_BYTES", 1000)

    result = load_dataset(MappingSource.FRIBB)

    assert "larger than 1000 bytes" in result.error
    assert records("fribb") == 0


def test_a_dataset_is_due_when_never_loaded_or_a_week_old_and_not_right_after_a_failure(
    file_server: FileServer, settings: Any
) -> None:
    settings.MAPPING_UPDATE_EVERY = timedelta(days=7)
    settings.MAPPING_RETRY_AFTER = timedelta(hours=6)
    assert datasets_due() == ["anime-lists", "fribb"]

    update_due_datasets()
    now = timezone.now()
    assert datasets_due(now=now) == []
    assert datasets_due(now=now + timedelta(days=8)) == ["anime-lists", "fribb"]

    file_server.files.clear()
    MappingDataset.objects.update(loaded_at=now - timedelta(days=8))
    update_due_datasets()
    assert datasets_due(now=timezone.now() + timedelta(hours=1)) == []
    assert datasets_due(now=timezone.now() + timedelta(hours=7)) == ["anime-lists", "fribb"]
