"""The outbox: Revenge's changes kept in PostgreSQL until Kitsu has them, each sent once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import models
from django.utils import timezone

from kitsu_sync.models import KitsuOutbox, KitsuToken, LibraryEntry, OutboxAction, SyncTrigger
from kitsu_sync.services import entries, outbox, push, tokens
from kitsu_sync.services.entries import KitsuState, standings
from kitsu_sync.services.sync import run_sync
from kitsu_sync.services.watch import record_watch_progress
from tests import mapping_files
from tests.sync_support import kitsu_delete_entry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("two_way", "deliveries")]

WRITE_ROUTES = ("POST /api/edge/library-entries", "PATCH /api/edge/library-entries/:id")


@pytest.fixture
def two_way(imported: Any, settings: Any) -> None:
    settings.KITSU_SYNC_DIRECTION = "two_way"


def writes(sandbox: Any) -> int:
    routes = sandbox.stats()["by_route"]
    return sum(routes.get(route, 0) for route in WRITE_ROUTES)


def watching(user: Any) -> LibraryEntry:
    return (
        LibraryEntry.objects.filter(
            user=user, status="watching", anime__episode_count__gte=12, progress__lt=5
        )
        .select_related("anime")
        .order_by("kitsu_entry_id")
        .first()
    )


def watch_next(user: Any, entry: LibraryEntry, step: int = 1) -> None:
    record_watch_progress(
        user_id=user.pk, anime_kitsu_id=entry.anime.kitsu_id, episode=entry.progress + step
    )


def row_of(entry: LibraryEntry) -> KitsuOutbox:
    return KitsuOutbox.objects.get(user_id=entry.user_id, anime_id=entry.anime_id)


def make_due(user: Any) -> None:
    KitsuOutbox.objects.filter(user=user).update(next_attempt_at=timezone.now())


def test_a_change_made_while_kitsu_answers_503_waits_and_is_delivered_later_once(
    kitsu: Any, imported: Any
) -> None:
    entry = watching(imported)
    watch_next(imported, entry)
    kitsu.set_faults([{"kind": "status", "status": 503, "count": None, "method": "PATCH"}])

    down = outbox.deliver(user_id=imported.pk)

    assert (down.sent, down.waiting) == (0, 1)
    row = row_of(entry)
    assert row.attempts == 1
    assert not row.failed
    assert "503" in row.last_error or "unavailable" in row.last_error.lower()
    # Backoff: not due again at once, so beat's drain leaves it until then.
    assert row.next_attempt_at > timezone.now() + outbox.RETRY_BASE / 2 - timedelta(seconds=1)
    assert outbox.users_with_due_changes() == []
    [standing] = standings([entry]).values()
    assert standing.state == KitsuState.WAITING
    assert "last attempt" in standing.detail
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress

    kitsu.set_faults([])
    make_due(imported)
    assert outbox.users_with_due_changes() == [imported.pk]
    kitsu.reset(data=False, tokens=False)
    up = outbox.deliver(user_id=imported.pk)

    assert up.sent == 1
    assert writes(kitsu) == 1
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 1
    assert not KitsuOutbox.objects.exists()
    assert outbox.deliver(user_id=imported.pk).sent == 0
    assert writes(kitsu) == 1


def test_changes_made_before_a_delivery_reach_kitsu_in_one_write(kitsu: Any, imported: Any) -> None:
    entry = watching(imported)
    for step in (1, 2, 3):
        watch_next(imported, entry, step)

    assert KitsuOutbox.objects.count() == 1
    assert outbox.deliver(user_id=imported.pk).sent == 1
    assert writes(kitsu) == 1
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 3


def test_a_change_kitsu_refuses_is_marked_failed_with_kitsus_reason_and_not_retried(
    kitsu: Any, imported: Any
) -> None:
    unknown_length = (
        LibraryEntry.objects.filter(user=imported, anime__episode_count__isnull=True)
        .select_related("anime")
        .first()
    )
    # Kitsu refuses "unreasonably high" progress of a title with no episode count (an edit is
    # checked against Kitsu's cap first; a media server's report is taken as it comes).
    record_watch_progress(
        user_id=imported.pk, anime_kitsu_id=unknown_length.anime.kitsu_id, episode=5000
    )

    delivery = outbox.deliver(user_id=imported.pk)

    assert (delivery.sent, delivery.refused) == (0, 1)
    row = row_of(unknown_length)
    assert row.failed
    assert "unreasonably high" in row.last_error
    [standing] = standings([unknown_length]).values()
    assert standing.state == KitsuState.FAILED
    assert "unreasonably high" in standing.detail
    # A failed change is not sent again by itself...
    kitsu.reset(data=False, tokens=False)
    assert outbox.users_with_due_changes() == []
    assert outbox.deliver(user_id=imported.pk).sent == 0
    assert writes(kitsu) == 0

    # ...but once the user fixes it, the fix is queued afresh and goes.
    entries.update_entry(
        user_id=imported.pk, anime_kitsu_id=unknown_length.anime.kitsu_id, changes={"progress": 50}
    )
    assert not row_of(unknown_length).failed
    assert outbox.deliver(user_id=imported.pk).sent == 1
    assert kitsu.store.entry_by_id(unknown_length.kitsu_entry_id).progress == 50


def test_a_refused_change_can_be_sent_again_as_it_is(kitsu: Any, imported: Any) -> None:
    entry = watching(imported)
    watch_next(imported, entry)
    KitsuOutbox.objects.filter(user=imported).update(failed=True, last_error="refused once")

    assert outbox.retry_failed(user_id=imported.pk, anime_id=entry.anime_id)
    assert not outbox.retry_failed(user_id=imported.pk, anime_id=entry.anime_id)
    assert outbox.deliver(user_id=imported.pk).sent == 1
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 1


def test_removing_an_entry_removes_it_from_kitsu(kitsu: Any, imported: Any) -> None:
    entry = watching(imported)

    assert entries.delete_entry(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id)

    row = row_of(entry)
    assert (row.action, row.kitsu_entry_id, row.entry_id) == (
        OutboxAction.DELETE,
        entry.kitsu_entry_id,
        None,
    )
    assert outbox.deliver(user_id=imported.pk).deleted == 1
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id) is None
    assert not KitsuOutbox.objects.exists()


def test_removing_an_entry_already_gone_from_kitsu_is_done(kitsu: Any, imported: Any) -> None:
    entry = watching(imported)
    entries.delete_entry(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id)
    kitsu_delete_entry(kitsu, entry.kitsu_entry_id)

    assert outbox.deliver(user_id=imported.pk).deleted == 1
    assert not KitsuOutbox.objects.exists()


def test_a_pending_removal_is_not_undone_by_a_sync_that_still_sees_the_entry_on_kitsu(
    kitsu: Any, imported: Any
) -> None:
    entry = watching(imported)
    entries.delete_entry(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id)
    # The delivery has not happened yet (the worker is down); a sync runs first.
    KitsuOutbox.objects.filter(user=imported).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )

    run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL, full=True)

    assert not LibraryEntry.objects.filter(pk=entry.pk).exists()
    assert not LibraryEntry.objects.filter(user=imported, anime=entry.anime).exists()
    make_due(imported)
    assert outbox.deliver(user_id=imported.pk).deleted == 1
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id) is None


def test_a_sync_sends_queued_changes_itself_and_takes_them_off_the_outbox(
    kitsu: Any, imported: Any
) -> None:
    entry = watching(imported)
    watch_next(imported, entry)

    run_sync(user_id=imported.pk, trigger=SyncTrigger.MANUAL)

    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 1
    assert not KitsuOutbox.objects.exists()
    kitsu.reset(data=False, tokens=False)
    assert outbox.deliver(user_id=imported.pk).sent == 0
    assert writes(kitsu) == 0


def test_changes_of_a_user_whose_link_is_gone_wait_with_the_reason(
    kitsu: Any, imported: Any
) -> None:
    entry = watching(imported)
    watch_next(imported, entry)
    kitsu.revoke_tokens(kitsu.credentials(1).user_id)
    KitsuToken.objects.filter(user=imported).update(token_expires_at=timezone.now())

    delivery = outbox.deliver(user_id=imported.pk)

    assert (delivery.sent, delivery.waiting) == (0, 1)
    row = row_of(entry)
    assert not row.failed
    assert "link" in row.last_error.lower()


def test_nothing_is_queued_for_a_user_without_a_kitsu_account(
    make_user: Any, deliveries: list[Any]
) -> None:
    user = make_user()
    anime = mapping_files.store_anime(1, episode_count=26, title="Cowboy Bebop")

    watched = record_watch_progress(user_id=user.pk, anime_kitsu_id=anime.kitsu_id, episode=1)

    assert watched.changed
    assert not watched.queued
    assert not KitsuOutbox.objects.exists()
    [standing] = standings([watched.entry]).values()
    assert standing == entries.Standing(
        KitsuState.LOCAL, "changed in Revenge; no Kitsu account linked: kept here"
    )


def test_the_outbox_asks_for_a_delivery_only_once_the_change_is_committed(
    imported: Any, deliveries: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    entry = watching(imported)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        watch_next(imported, entry)
    assert deliveries == []

    for callback in callbacks:
        callback()
    assert deliveries == [(imported.pk,)]


def test_the_backoff_grows_and_is_capped() -> None:
    delays = [outbox._backoff(attempts) for attempts in range(1, 20)]

    assert outbox.RETRY_BASE / 2 <= delays[0] <= outbox.RETRY_BASE
    assert delays[5] >= outbox.RETRY_BASE * 2**5 / 2
    assert all(delay <= outbox.RETRY_MAX for delay in delays)
    assert delays[-1] >= outbox.RETRY_MAX / 2


def test_a_change_made_while_a_delivery_sends_is_kept_for_the_next(
    kitsu: Any, imported: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = watching(imported)
    second = (
        LibraryEntry.objects.filter(user=imported, status="watching", anime__episode_count__gte=3)
        .exclude(pk=first.pk)
        .filter(progress__lte=models.F("anime__episode_count") - 2)
        .select_related("anime")
        .first()
    )
    # `first` waits with nothing left to send (a sync sent it already), `second` with a change.
    outbox.queue_write(first)
    watch_next(imported, second)
    send_pushes = push.send_pushes

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        # The person watches an episode of `first` while `second` is written to Kitsu.
        watch_next(imported, first)
        return send_pushes(*args, **kwargs)

    monkeypatch.setattr(push, "send_pushes", meanwhile)
    monkeypatch.setattr(outbox, "ROUNDS", 1)
    outbox.deliver(user_id=imported.pk)
    monkeypatch.setattr(push, "send_pushes", send_pushes)

    # The delivery removed the rows as it had read them: the new change of `first` waits.
    assert list(KitsuOutbox.objects.values_list("anime_id", flat=True)) == [first.anime_id]
    assert kitsu.store.entry_by_id(second.kitsu_entry_id).progress == second.progress + 1
    outbox.deliver(user_id=imported.pk)
    assert kitsu.store.entry_by_id(first.kitsu_entry_id).progress == first.progress + 1
    assert not KitsuOutbox.objects.exists()


def test_an_anime_removed_and_added_again_before_the_removal_went_keeps_its_kitsu_entry(
    kitsu: Any, imported: Any
) -> None:
    entry = watching(imported)
    entries.delete_entry(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id)

    again, created = entries.add_entry(
        user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id, status="on_hold"
    )

    assert created
    assert again.kitsu_entry_id == entry.kitsu_entry_id
    assert row_of(again).action == OutboxAction.WRITE
    assert outbox.deliver(user_id=imported.pk).sent == 1
    record = kitsu.store.entry_by_id(entry.kitsu_entry_id)
    assert record is not None
    assert record.status == "on_hold"
    assert not KitsuOutbox.objects.exists()


def test_a_removal_kitsu_refuses_is_marked_failed_not_retried_forever(
    kitsu: Any, imported: Any
) -> None:
    entry = watching(imported)
    entries.delete_entry(user_id=imported.pk, anime_kitsu_id=entry.anime.kitsu_id)
    kitsu.set_faults([{"kind": "status", "status": 403, "count": None, "method": "DELETE"}])

    delivery = outbox.deliver(user_id=imported.pk)

    assert (delivery.deleted, delivery.refused) == (0, 1)
    assert row_of(entry).failed
    assert outbox.users_with_due_changes() == []


def test_writes_whose_entry_is_gone_are_dropped(kitsu: Any, imported: Any) -> None:
    entry = watching(imported)
    watch_next(imported, entry)
    LibraryEntry.objects.filter(pk=entry.pk).delete()  # the admin, say

    assert outbox.deliver(user_id=imported.pk).sent == 0
    assert not KitsuOutbox.objects.exists()
    assert outbox.users_with_due_changes() == []


def test_unlinking_forgets_the_changes_waiting_for_that_account(imported: Any) -> None:
    watch_next(imported, watching(imported))

    tokens.unlink(user=imported, delete_library=False)

    assert not KitsuOutbox.objects.exists()


def test_after_a_switch_to_import_only_waiting_changes_stay_in_revenge(
    kitsu: Any, imported: Any, settings: Any
) -> None:
    entry = watching(imported)
    watch_next(imported, entry)
    settings.KITSU_SYNC_DIRECTION = "import_only"

    assert outbox.users_with_due_changes() == []
    assert outbox.deliver(user_id=imported.pk).sent == 0
    assert writes(kitsu) == 0
    assert KitsuOutbox.objects.count() == 1
