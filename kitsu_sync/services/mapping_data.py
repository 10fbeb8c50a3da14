"""The community mapping datasets, downloaded at the user's site and kept in the database.

Neither Anime-Lists nor Fribb's list carries a licence that allows shipping a copy, so
Revenge downloads them (from MAPPING_ANIME_LISTS_URL and MAPPING_FRIBB_URL, which default to
the projects' published raw files), with `kitsu_mappings_update` and a periodic task. A file
is parsed whole before anything is written, and a dataset is replaced in one transaction: a
download or parse that fails leaves the data already loaded as it was, and resolution keeps
working (with Kitsu's own mappings only, when a dataset was never loaded).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kitsu_sync.datasets import (
    DatasetError,
    FribbEntry,
    anime_lists_ids,
    anime_lists_json,
    fribb_json,
    read_anime_lists,
    read_fribb,
)
from kitsu_sync.db import bulk_write, delete_rows
from kitsu_sync.models import MappingDataset, MappingKey, MappingRecord, MappingSource

logger = logging.getLogger(__name__)

# Records written per statement.
BATCH = 5000
# A dataset file larger than this is refused (the real ones are about 4 and 13 MB).
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
DATASETS = (MappingSource.ANIME_LISTS, MappingSource.FRIBB)

Progress = Callable[[str, int], None]  # (dataset, records written so far)


@dataclass(frozen=True)
class _Dataset:
    reader: Callable[[IO[bytes]], Iterator[Any]]
    as_json: Callable[[Any], dict[str, Any]]
    ids: Callable[[Any], dict[str, tuple[str, ...]]]
    url_setting: str


_DATASETS = {
    MappingSource.ANIME_LISTS: _Dataset(
        read_anime_lists, anime_lists_json, anime_lists_ids, "MAPPING_ANIME_LISTS_URL"
    ),
    MappingSource.FRIBB: _Dataset(read_fribb, fribb_json, FribbEntry.ids, "MAPPING_FRIBB_URL"),
}


class DownloadError(Exception):
    """The dataset could not be downloaded; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class LoadResult:
    source: str
    records: int  # records loaded now (0 when it failed or nothing changed)
    published_at: datetime | None
    unchanged: bool = False  # the same file as loaded before: nothing rewritten
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def dataset_of_file(path: Path) -> str:
    """Which dataset a local file is, by its first bytes (XML: Anime-Lists, JSON: Fribb)."""
    with path.open("rb") as stream:
        head = stream.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return MappingSource.ANIME_LISTS
    if head.startswith((b"[", b"{")):
        return MappingSource.FRIBB
    raise DatasetError(f"{path} is neither an Anime-Lists XML file nor a Fribb JSON file.")


def _download(url: str, destination: IO[bytes]) -> tuple[datetime | None, str]:
    """Write the file at `url` to `destination`; (its Last-Modified date, its SHA-256)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with requests.get(url, stream=True, timeout=(10, 60), allow_redirects=True) as response:
            if response.status_code != 200:
                raise DownloadError(f"{url} answered HTTP {response.status_code}.")
            for chunk in response.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise DownloadError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes.")
                digest.update(chunk)
                destination.write(chunk)
            modified = response.headers.get("Last-Modified")
    except requests.RequestException as exc:
        raise DownloadError(f"{url} could not be downloaded ({type(exc).__name__}).") from exc
    try:
        published = parsedate_to_datetime(modified) if modified else None
    except (TypeError, ValueError):
        published = None
    return published, digest.hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _batches(entries: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _store(
    source: str, entries: Iterator[Any], *, dataset: _Dataset, progress: Progress | None
) -> int:
    """Replace the dataset's records with `entries` (read as they are written, a batch at a
    time), in the caller's transaction; how many there were."""
    old = MappingRecord.objects.filter(source=source)
    delete_rows(MappingKey.objects.filter(record__in=old.values("pk")))
    delete_rows(old)
    now = timezone.now()
    written = 0
    for batch in _batches(entries, BATCH):
        records = [
            MappingRecord(
                source=source,
                anidb_id=getattr(entry, "anidb_id", None),
                data=dataset.as_json(entry),
                fetched_at=now,
            )
            for entry in batch
        ]
        bulk_write(MappingRecord, records)
        keys = [
            MappingKey(record_id=record.pk, site=site, value=value)
            for record, entry in zip(records, batch, strict=True)
            for site, values in dataset.ids(entry).items()
            for value in values
        ]
        bulk_write(MappingKey, keys)
        written += len(batch)
        if progress is not None:
            progress(source, written)
    return written


def _fetch(url: str, path: Path | None, folder: str) -> tuple[Path, datetime | None, str]:
    """The dataset's file (downloaded into `folder` when no `path` is given), its date and
    its SHA-256."""
    if path is not None:
        return path, datetime.fromtimestamp(path.stat().st_mtime, UTC), _file_digest(path)
    path = Path(folder) / "dataset"
    with path.open("wb") as destination:
        published, sha256 = _download(url, destination)
    return path, published, sha256


def load_dataset(
    source: str,
    *,
    path: Path | None = None,
    progress: Progress | None = None,
) -> LoadResult:
    """Load one dataset from `path`, or download it from its URL setting. Never raises for a
    bad file or download: the result says what went wrong, and the old data stays.

    The file is read as it is written, in one transaction with the removal of the old
    records: a parse error half-way rolls it all back, and memory stays flat whatever the
    file's size."""
    dataset = _DATASETS[MappingSource(source)]
    url = "" if path is not None else getattr(settings, dataset.url_setting)
    row, _ = MappingDataset.objects.get_or_create(source=source)
    attempt = timezone.now()
    try:
        with tempfile.TemporaryDirectory(prefix="kitsu-mappings-") as folder:
            path, published, sha256 = _fetch(url, path, folder)
            if sha256 == row.sha256 and MappingRecord.objects.filter(source=source).exists():
                MappingDataset.objects.filter(pk=row.pk).update(
                    last_attempt_at=attempt, loaded_at=attempt, last_error=""
                )
                return LoadResult(source, 0, row.published_at, unchanged=True)
            with path.open("rb") as stream, transaction.atomic():
                count = _store(source, dataset.reader(stream), dataset=dataset, progress=progress)
                if not count:
                    raise DatasetError("The file holds no records; the data loaded before is kept.")
                MappingDataset.objects.filter(pk=row.pk).update(
                    url=url,
                    loaded_at=timezone.now(),
                    published_at=published,
                    records=count,
                    sha256=sha256,
                    last_attempt_at=attempt,
                    last_error="",
                )
    except (DatasetError, DownloadError, OSError) as exc:
        reason = getattr(exc, "message", None) or str(exc)
        MappingDataset.objects.filter(pk=row.pk).update(last_attempt_at=attempt, last_error=reason)
        logger.warning("The %s dataset was not loaded: %s", source, reason)
        return LoadResult(source, 0, row.published_at, error=reason)
    logger.info("Loaded %s records of the %s dataset", count, source)
    return LoadResult(source, count, published)


def update_datasets(
    *, paths: Iterable[Path] = (), progress: Progress | None = None
) -> list[LoadResult]:
    """Load the given files (each dataset found by its content), or, with none, download
    both datasets."""
    files = {dataset_of_file(path): path for path in paths}
    if files:
        return [
            load_dataset(source, path=path, progress=progress) for source, path in files.items()
        ]
    return [load_dataset(source, progress=progress) for source in DATASETS]


def datasets_due(*, now: datetime | None = None) -> list[str]:
    """The datasets to download now: never loaded, or loaded MAPPING_UPDATE_EVERY ago; after a
    failed attempt, not again within MAPPING_RETRY_AFTER."""
    now = now or timezone.now()
    rows = {row.source: row for row in MappingDataset.objects.all()}
    due = []
    for source in DATASETS:
        row = rows.get(source)
        if row is None:
            due.append(source)
            continue
        failed_lately = (
            row.last_error != ""
            and row.last_attempt_at is not None
            and now - row.last_attempt_at < settings.MAPPING_RETRY_AFTER
        )
        stale = row.loaded_at is None or now - row.loaded_at >= settings.MAPPING_UPDATE_EVERY
        if stale and not failed_lately:
            due.append(source)
    return due


def update_due_datasets() -> list[LoadResult]:
    """The periodic task's work: download the datasets that are due."""
    return [load_dataset(source) for source in datasets_due()]


def age_of(row: MappingDataset, *, now: datetime | None = None) -> timedelta | None:
    return None if row.loaded_at is None else (now or timezone.now()) - row.loaded_at
