"""What every fault test asks at the end, answered here once: is everything the user had before
the fault still there (entries, tokens, sync history), and does Revenge now hold exactly what
Kitsu holds (so no page was skipped and nothing was imported twice)?"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kitsu_sync.models import KitsuToken, LibraryEntry, SyncRun
from tests.sync_support import visible_anime_entries

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def kitsu_library(sandbox: Any, index: int = 1) -> dict[int, tuple[int, str, datetime]]:
    """kitsu entry id -> (progress, notes, updatedAt) on Kitsu."""
    return {
        entry.id: (
            entry.progress,
            entry.notes or "",
            EPOCH + timedelta(milliseconds=entry.updated_at),
        )
        for entry in visible_anime_entries(sandbox, index)
    }


def revenge_library(user: Any) -> dict[int, tuple[int, str, datetime]]:
    """kitsu entry id -> (progress, notes, Kitsu's updatedAt) as imported into Revenge."""
    rows = LibraryEntry.objects.filter(user=user).values_list(
        "kitsu_entry_id", "progress", "notes", "kitsu_updated_at"
    )
    library: dict[int, tuple[int, str, datetime]] = {}
    for kitsu_entry_id, progress, notes, updated_at in rows:
        assert kitsu_entry_id not in library, f"entry {kitsu_entry_id} imported twice"
        library[kitsu_entry_id] = (progress, notes, updated_at)
    return library


def assert_in_step_with_kitsu(user: Any, sandbox: Any, index: int = 1) -> None:
    """Revenge holds every entry Kitsu holds, with Kitsu's values, once each."""
    local = revenge_library(user)
    remote = kitsu_library(sandbox, index)
    assert local.keys() == remote.keys(), (
        f"missing {sorted(remote.keys() - local.keys())[:10]}, "
        f"extra {sorted(local.keys() - remote.keys())[:10]}"
    )
    differing = [entry_id for entry_id in remote if local[entry_id] != remote[entry_id]]
    assert not differing, f"entries that differ from Kitsu: {differing[:10]}"
    assert LibraryEntry.objects.filter(user=user).count() == len(remote)


@dataclass(frozen=True)
class Baseline:
    """What a user had before a fault: entries (pk -> values), tokens and sync history."""

    user: Any
    entries: dict[int, tuple[Any, ...]]
    tokens: tuple[str, str]
    runs: dict[int, str]

    @classmethod
    def of(cls, user: Any) -> Baseline:
        link = KitsuToken.objects.get(user=user)
        return cls(
            user=user,
            entries=_entries(user),
            tokens=(link.access_token, link.refresh_token),
            runs=dict(SyncRun.objects.filter(user=user).values_list("pk", "outcome")),
        )

    def assert_intact(
        self, *, changed_on_kitsu: Collection[int] = frozenset(), token_refreshed: bool = False
    ) -> None:
        """Nothing the user had is lost. Entries changed on Kitsu since may differ (a later
        sync brings them); a refreshed token must differ, and both tokens must be stored."""
        now = _entries(self.user)
        lost = self.entries.keys() - now.keys()
        assert not lost, f"{len(lost)} previously imported entries are gone"
        altered = [
            pk
            for pk, values in self.entries.items()
            if now[pk] != values and values[0] not in changed_on_kitsu
        ]
        assert not altered, f"{len(altered)} untouched entries were changed, e.g. {altered[:5]}"
        link = KitsuToken.objects.get(user=self.user)
        assert link.access_token
        assert link.refresh_token
        if token_refreshed:
            assert (link.access_token, link.refresh_token) != self.tokens
        else:
            assert (link.access_token, link.refresh_token) == self.tokens
        history = dict(SyncRun.objects.filter(user=self.user).values_list("pk", "outcome"))
        for pk, outcome in self.runs.items():
            assert history.get(pk) == outcome, f"sync run {pk} was lost or rewritten"


def _entries(user: Any) -> dict[int, tuple[Any, ...]]:
    return {
        pk: rest
        for pk, *rest in LibraryEntry.objects.filter(user=user).values_list(
            "pk", "kitsu_entry_id", "status", "progress", "score", "notes", "updated_at"
        )
    }


def assert_readable(reason: str) -> None:
    """A reason a person can act on: a sentence, no traceback, no repr of an exception."""
    assert reason[:1].isupper(), reason
    for sign_of_a_dump in ("Traceback", "Error(", "<", "\n"):
        assert sign_of_a_dump not in reason, reason
    assert len(reason) < 400, reason
