"""Kitsu stops accepting the access token in the middle of an import.

When only the access token is dead (expired or revoked: Kitsu answers 401 "Invalid token"),
the sync refreshes it once and carries on from the page that failed. When Kitsu also rejects
the refresh token (`invalid_grant`), the link is marked as needing re-link: the dashboard says
so, scheduled syncs leave the user alone, and nothing the user had is deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync.models import (
    KitsuSyncState,
    KitsuToken,
    SyncOutcome,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from kitsu_sync.services.schedule import dispatch_due_syncs, request_sync
from kitsu_sync.services.sync import run_sync
from tests.reliability.checks import Baseline, assert_in_step_with_kitsu, assert_readable

pytestmark = pytest.mark.django_db

TOKEN_ROUTE = "POST /api/oauth/token"
LIBRARY_ROUTE = "GET /api/edge/library-entries"


@pytest.fixture
def imported_user(paged_kitsu: Any, linked_user: Any) -> Callable[..., Any]:
    """Make a user linked to seeded user `index` of `paged_kitsu`, their library imported once."""

    def make(name: str, index: int = 1) -> Any:
        user = linked_user(name, index, sandbox=paged_kitsu)
        first = run_sync(user_id=user.pk, trigger=SyncTrigger.LINK)
        assert first.outcome == SyncOutcome.SUCCESS, first.errors
        return user

    return make


class AfterFirstPage:
    """A progress callback that does something to Kitsu once the first page is stored."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.done = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.done:
            self.done = True
            self.action()


def test_a_token_revoked_mid_import_is_refreshed_once_and_the_import_goes_on(
    paged_kitsu: Any, imported_user: Any
) -> None:
    user = imported_user("refreshed")
    baseline = Baseline.of(user)
    kitsu_user_id = paged_kitsu.credentials(1).user_id
    paged_kitsu.reset(data=False, tokens=False)  # fresh counters

    run = run_sync(
        user_id=user.pk,
        trigger=SyncTrigger.SCHEDULE,
        full=True,
        progress=AfterFirstPage(lambda: paged_kitsu.expire_tokens(kitsu_user_id)),
    )

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    stats = paged_kitsu.stats()
    assert stats["by_status"]["401"] == 1
    assert stats["by_route"][TOKEN_ROUTE] == 1, "one refresh"
    # Three pages, and the one refused with 401 asked again: nothing re-read from the start.
    assert stats["by_route"][LIBRARY_ROUTE] == 4
    assert_in_step_with_kitsu(user, paged_kitsu)
    baseline.assert_intact(token_refreshed=True)
    assert not KitsuToken.objects.get(user=user).needs_relink


def test_a_refresh_rejected_mid_import_marks_the_link_for_relink_and_deletes_nothing(
    paged_kitsu: Any,
    imported_user: Any,
    link_user: Any,
    client: Any,
    monkeypatch: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = imported_user("revoked")
    neighbour = imported_user("neighbour", index=2)
    baseline = Baseline.of(user)
    kitsu_user_id = paged_kitsu.credentials(1).user_id
    paged_kitsu.reset(data=False, tokens=False)

    run = run_sync(
        user_id=user.pk,
        trigger=SyncTrigger.SCHEDULE,
        full=True,
        progress=AfterFirstPage(lambda: paged_kitsu.revoke_tokens(kitsu_user_id)),
    )

    assert run.outcome == SyncOutcome.FAILED
    reason = run.errors[-1]["reason"]
    assert "Link Kitsu again" in reason
    assert_readable(reason)
    assert run.errors[-1]["retryable"] is False
    assert paged_kitsu.stats()["by_route"][TOKEN_ROUTE] == 1, "one refresh, refused"
    link = KitsuToken.objects.get(user=user)
    assert link.needs_relink
    assert "Link Kitsu again" in link.relink_reason
    state = KitsuSyncState.objects.get(user=user)
    assert state.last_sync_status == SyncStatus.NEEDS_RELINK
    assert state.sync_claimed_until is None
    # Nothing deleted: entries, the (now useless) tokens and the history are all kept.
    baseline.assert_intact()

    # The user sees it.
    client.force_login(user)
    page = client.get("/").content.decode()
    assert 'id="relink-banner"' in page
    assert link.relink_reason in page
    assert "Sync now" not in page

    # Scheduled syncs leave the user alone; the healthy neighbour is still queued.
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr("kitsu_sync.tasks.sync_library.delay", lambda *args: sent.append(args))
    KitsuSyncState.objects.filter(user__in=[user, neighbour]).update(
        next_sync_at=timezone.now() - timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_syncs() == 1
        assert not request_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)
    assert sent == [(neighbour.pk, "schedule", False)]
    paged_kitsu.reset(data=False, tokens=False)
    refused = run_sync(user_id=user.pk, trigger=SyncTrigger.COMMAND)
    assert refused.outcome == SyncOutcome.FAILED
    assert paged_kitsu.stats()["total"] == 0, "a link needing re-link is not even tried"
    baseline.assert_intact()
    assert SyncRun.objects.filter(user=user).count() == len(baseline.runs) + 2

    # Linking again brings the user back, and a later sync completes.
    link_user(user, paged_kitsu)
    later = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)
    assert later.outcome == SyncOutcome.SUCCESS, later.errors
    assert_in_step_with_kitsu(user, paged_kitsu)
    baseline.assert_intact(token_refreshed=True)
