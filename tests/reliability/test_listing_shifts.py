"""Kitsu's library pages are offsets into a list sorted by updatedAt. When the user changes an
entry on Kitsu while Revenge is between two pages, that entry jumps to the end of the list and
every later entry slides back one place: the entry at the page boundary is never served.

A full pass must not take that entry for deleted, and an incremental run must not move its
cursor past it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kitsu_sync.models import KitsuSyncState, LibraryEntry, SyncOutcome, SyncTrigger
from kitsu_sync.services.sync import run_sync
from tests.reliability.checks import Baseline, assert_in_step_with_kitsu
from tests.sync_support import kitsu_update_entry, visible_anime_entries

pytestmark = pytest.mark.django_db


class EditOnKitsuAfterFirstPage:
    def __init__(self, sandbox: Any, entry_id: int) -> None:
        self.sandbox = sandbox
        self.entry_id = entry_id
        self.done = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.done:
            self.done = True
            kitsu_update_entry(self.sandbox, self.entry_id, {"notes": "edited mid-listing"})


def imported_with_a_stale_boundary_entry(
    paged_kitsu: Any, linked_user: Any
) -> tuple[Any, Any, Any]:
    """A user imported once; Revenge's copy of the entry at the start of Kitsu's second page is
    one version behind Kitsu (so reading it changes it, and missing it shows)."""
    user = linked_user("shifted", sandbox=paged_kitsu)
    assert run_sync(user_id=user.pk, trigger=SyncTrigger.LINK).outcome == SyncOutcome.SUCCESS
    in_kitsu_order = sorted(visible_anime_entries(paged_kitsu), key=lambda entry: entry.updated_at)
    first, boundary = in_kitsu_order[0], in_kitsu_order[500]
    stale = LibraryEntry.objects.get(user=user, kitsu_entry_id=boundary.id)
    stale.notes = "an older version"
    stale.synced_values = {**stale.synced_values, "notes": "an older version"}
    stale.kitsu_updated_at -= timedelta(days=1)
    stale.save()
    return user, first, boundary


def test_a_full_pass_does_not_delete_an_entry_kitsu_skipped_after_an_edit_mid_listing(
    paged_kitsu: Any, linked_user: Any
) -> None:
    user, first, boundary = imported_with_a_stale_boundary_entry(paged_kitsu, linked_user)
    baseline = Baseline.of(user)

    run = run_sync(
        user_id=user.pk,
        trigger=SyncTrigger.ADMIN,
        full=True,
        progress=EditOnKitsuAfterFirstPage(paged_kitsu, first.id),
    )

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert run.deleted == 0
    assert_in_step_with_kitsu(user, paged_kitsu)
    baseline.assert_intact(changed_on_kitsu={first.id, boundary.id})


def test_an_incremental_run_disturbed_by_an_edit_mid_listing_reads_the_window_again(
    paged_kitsu: Any, linked_user: Any
) -> None:
    user, first, boundary = imported_with_a_stale_boundary_entry(paged_kitsu, linked_user)
    # A cursor older than the whole library: this incremental run reads three pages.
    oldest = min(LibraryEntry.objects.filter(user=user).values_list("kitsu_updated_at", flat=True))
    KitsuSyncState.objects.filter(user=user).update(cursor_updated_at=oldest)

    disturbed = run_sync(
        user_id=user.pk,
        trigger=SyncTrigger.SCHEDULE,
        progress=EditOnKitsuAfterFirstPage(paged_kitsu, first.id),
    )
    assert disturbed.outcome == SyncOutcome.SUCCESS, disturbed.errors
    assert not disturbed.full
    skipped = LibraryEntry.objects.get(user=user, kitsu_entry_id=boundary.id)
    assert skipped.notes == "an older version", "Kitsu's pages shifted past it"
    later = run_sync(user_id=user.pk, trigger=SyncTrigger.SCHEDULE)

    assert later.outcome == SyncOutcome.SUCCESS, later.errors
    assert_in_step_with_kitsu(user, paged_kitsu)
