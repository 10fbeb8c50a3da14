"""The three-way merge rules, as pure functions (no database, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kitsu_sync.merge import (
    KITSU,
    REVENGE,
    SYNCED_FIELDS,
    SyncDirection,
    base_after,
    base_after_write,
    merge_entry,
    model_values,
    rewatch_started,
    snapshot,
)

EARLIER = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LATER = EARLIER + timedelta(hours=3)


def entry(**changes: Any) -> dict[str, Any]:
    values = {
        "status": "watching",
        "progress": 5,
        "score": 80,
        "rewatching": False,
        "rewatch_count": 0,
        "notes": "",
        "private": False,
        "started_at": "2024-12-01T10:00:00.000Z",
        "finished_at": None,
    }
    values.update(changes)
    return snapshot(values)


def test_snapshot_compares_times_at_kitsus_millisecond_precision_in_utc() -> None:
    from_database = entry(started_at=datetime(2024, 12, 1, 11, 0, 0, 123456, tzinfo=UTC))
    from_kitsu = entry(started_at="2024-12-01T11:00:00.123Z")

    assert from_database == from_kitsu
    assert from_database["started_at"] == "2024-12-01T11:00:00.123Z"


def test_snapshot_treats_missing_notes_as_empty_text() -> None:
    assert entry(notes=None) == entry(notes="")


def test_model_values_turns_snapshot_times_back_into_aware_datetimes() -> None:
    values = model_values(entry())

    assert values["started_at"] == datetime(2024, 12, 1, 10, 0, tzinfo=UTC)
    assert values["finished_at"] is None


def test_nothing_changed_on_either_side_means_nothing_to_do() -> None:
    result = merge_entry(
        base=entry(), local=entry(), remote=entry(), direction=SyncDirection.TWO_WAY
    )

    assert result.to_local == {}
    assert result.to_remote == {}
    assert result.conflicts == []
    assert result.merged == entry()


def test_a_field_changed_only_in_revenge_goes_to_kitsu() -> None:
    result = merge_entry(
        base=entry(), local=entry(progress=7), remote=entry(), direction=SyncDirection.TWO_WAY
    )

    assert result.to_remote == {"progress": 7}
    assert result.to_local == {}
    assert result.conflicts == []


def test_a_field_changed_only_on_kitsu_comes_to_revenge() -> None:
    result = merge_entry(
        base=entry(), local=entry(), remote=entry(notes="great"), direction=SyncDirection.TWO_WAY
    )

    assert result.to_local == {"notes": "great"}
    assert result.to_remote == {}


def test_each_side_changing_a_different_field_keeps_both_changes() -> None:
    result = merge_entry(
        base=entry(),
        local=entry(progress=8),
        remote=entry(score=90),
        direction=SyncDirection.TWO_WAY,
    )

    assert result.merged["progress"] == 8
    assert result.merged["score"] == 90
    assert result.to_remote == {"progress": 8}
    assert result.to_local == {"score": 90}
    assert result.conflicts == []


def test_both_sides_making_the_same_change_is_no_conflict() -> None:
    result = merge_entry(
        base=entry(), local=entry(score=95), remote=entry(score=95), direction=SyncDirection.TWO_WAY
    )

    assert result.conflicts == []
    assert not result.changes_anything


def test_progress_changed_on_both_sides_never_goes_backwards() -> None:
    result = merge_entry(
        base=entry(progress=5),
        local=entry(progress=9),
        remote=entry(progress=7),
        direction=SyncDirection.TWO_WAY,
        local_updated_at=EARLIER,
        remote_updated_at=LATER,
    )

    assert result.merged["progress"] == 9
    assert result.to_remote == {"progress": 9}
    [conflict] = result.conflicts
    assert (conflict.field, conflict.kept, conflict.base) == ("progress", REVENGE, 5)
    assert "never goes backwards" in conflict.rule


def test_a_rewatch_started_in_revenge_lets_its_progress_restart() -> None:
    base = entry(status="completed", progress=12, finished_at="2024-12-20T00:00:00.000Z")
    local = entry(
        status="watching", progress=1, rewatching=True, finished_at="2024-12-20T00:00:00.000Z"
    )
    remote = entry(
        status="completed",
        progress=12,
        notes="rewatch soon",
        finished_at="2024-12-20T00:00:00.000Z",
    )

    result = merge_entry(
        base=base,
        local=local,
        remote=remote,
        direction=SyncDirection.TWO_WAY,
        remote_updated_at=LATER,
    )

    assert result.merged["progress"] == 1
    assert result.merged["status"] == "watching"
    assert result.merged["rewatching"] is True
    assert result.to_remote["progress"] == 1
    assert result.to_local == {"notes": "rewatch soon"}


def test_a_rewatch_started_on_kitsu_wins_over_revenges_progress() -> None:
    base = entry(status="completed", progress=12)
    local = entry(status="completed", progress=12, score=100)
    remote = entry(status="watching", progress=2, rewatching=True)
    # Revenge changed the score only; Kitsu restarted the show.
    result = merge_entry(base=base, local=local, remote=remote, direction=SyncDirection.TWO_WAY)

    assert result.to_local == {"status": "watching", "progress": 2, "rewatching": True}
    assert result.to_remote == {"score": 100}


def test_conflicting_rewatch_and_progress_is_settled_for_the_rewatching_side() -> None:
    base = entry(status="completed", progress=12)
    local = entry(status="on_hold", progress=13)
    remote = entry(status="watching", progress=2, rewatching=True)

    result = merge_entry(
        base=base,
        local=local,
        remote=remote,
        direction=SyncDirection.TWO_WAY,
        local_updated_at=LATER,
        remote_updated_at=EARLIER,
    )

    kept = {conflict.field: conflict.kept for conflict in result.conflicts}
    assert kept == {"status": KITSU, "progress": KITSU}
    assert result.merged["progress"] == 2
    assert all("rewatch started on Kitsu" in c.rule for c in result.conflicts)


def test_rewatch_count_never_goes_backwards() -> None:
    result = merge_entry(
        base=entry(rewatch_count=1),
        local=entry(rewatch_count=2),
        remote=entry(rewatch_count=3),
        direction=SyncDirection.TWO_WAY,
        local_updated_at=LATER,
        remote_updated_at=EARLIER,
    )

    assert result.merged["rewatch_count"] == 3
    assert result.conflicts[0].kept == KITSU


@pytest.mark.parametrize(
    ("local_at", "remote_at", "kept", "value"),
    [
        (LATER, EARLIER, REVENGE, "mine"),
        (EARLIER, LATER, KITSU, "theirs"),
        (EARLIER, EARLIER, KITSU, "theirs"),
        (None, EARLIER, KITSU, "theirs"),
    ],
)
def test_other_fields_changed_on_both_sides_take_the_newer_change(
    local_at: datetime | None, remote_at: datetime, kept: str, value: str
) -> None:
    result = merge_entry(
        base=entry(notes="original"),
        local=entry(notes="mine"),
        remote=entry(notes="theirs"),
        direction=SyncDirection.TWO_WAY,
        local_updated_at=local_at,
        remote_updated_at=remote_at,
    )

    assert result.merged["notes"] == value
    [conflict] = result.conflicts
    assert conflict.kept == kept
    assert conflict.rule.startswith("newer change wins")
    log = conflict.as_record(anime_kitsu_id=12, title="One Piece")
    assert log["value"] == value
    assert log["local"] == "mine"
    assert log["remote"] == "theirs"


def test_clearing_a_rating_in_revenge_clears_it_on_kitsu() -> None:
    result = merge_entry(
        base=entry(score=80),
        local=entry(score=None),
        remote=entry(score=80),
        direction=SyncDirection.TWO_WAY,
    )

    assert result.to_remote == {"score": None}


def test_import_only_lets_kitsu_win_a_conflict_and_sends_nothing() -> None:
    result = merge_entry(
        base=entry(score=80),
        local=entry(score=60, progress=9),
        remote=entry(score=40),
        direction=SyncDirection.IMPORT_ONLY,
        local_updated_at=LATER,
        remote_updated_at=EARLIER,
    )

    assert result.to_local == {"score": 40}
    assert result.to_remote == {}
    # The Revenge-only progress change stays in Revenge.
    assert result.merged["progress"] == 9
    [conflict] = result.conflicts
    assert (conflict.field, conflict.kept) == ("score", KITSU)


def test_export_only_ignores_kitsus_changes_and_sends_revenges() -> None:
    result = merge_entry(
        base=entry(),
        local=entry(progress=6, notes="mine"),
        remote=entry(notes="theirs", score=20),
        direction=SyncDirection.EXPORT_ONLY,
    )

    assert result.to_local == {}
    assert result.to_remote == {"progress": 6, "notes": "mine"}
    assert result.merged["score"] == 80
    [conflict] = result.conflicts
    assert (conflict.field, conflict.kept) == ("notes", REVENGE)


def test_an_entry_only_on_kitsu_is_created_in_revenge_unless_exporting_only() -> None:
    assert (
        merge_entry(base=None, local=None, remote=entry(), direction=SyncDirection.TWO_WAY).to_local
        == entry()
    )
    assert (
        merge_entry(
            base=None, local=None, remote=entry(), direction=SyncDirection.EXPORT_ONLY
        ).to_local
        == {}
    )


def test_an_entry_only_in_revenge_is_sent_whole_unless_importing_only() -> None:
    assert (
        merge_entry(
            base=None, local=entry(), remote=None, direction=SyncDirection.TWO_WAY
        ).to_remote
        == entry()
    )
    assert (
        merge_entry(
            base=None, local=entry(), remote=None, direction=SyncDirection.IMPORT_ONLY
        ).to_remote
        == {}
    )


def test_without_a_base_every_difference_is_a_recorded_conflict() -> None:
    result = merge_entry(
        base=None,
        local=entry(progress=3),
        remote=entry(progress=4, private=True),
        direction=SyncDirection.TWO_WAY,
        local_updated_at=LATER,
        remote_updated_at=EARLIER,
    )

    assert {c.field for c in result.conflicts} == {"progress", "private"}
    assert result.merged["progress"] == 4
    assert result.merged["private"] is False


def test_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown sync direction"):
        merge_entry(base=None, local=entry(), remote=entry(), direction="sideways")


def test_the_stored_base_keeps_kitsus_value_for_fields_not_yet_sent() -> None:
    remote = entry()
    result = merge_entry(
        base=entry(), local=entry(progress=9), remote=remote, direction=SyncDirection.TWO_WAY
    )

    assert base_after(result, base=entry(), remote=remote) == remote


def test_the_stored_base_keeps_a_held_back_difference_one_sided() -> None:
    base = entry()
    local = entry(progress=9)
    remote = entry()
    result = merge_entry(base=base, local=local, remote=remote, direction=SyncDirection.IMPORT_ONLY)

    stored = base_after(result, base=base, remote=remote)

    # Next time the progress still reads as a Revenge change, not a Kitsu one.
    again = merge_entry(
        base=stored, local=local, remote=remote, direction=SyncDirection.IMPORT_ONLY
    )
    assert again.to_local == {}
    assert again.conflicts == []


def test_the_base_after_a_write_is_what_kitsu_answered() -> None:
    written = entry(progress=12, status="completed")

    assert base_after_write(before=entry(), local=written, written=written) == written


def test_rewatch_started_means_the_rewatch_flag_went_on() -> None:
    assert rewatch_started(entry(rewatching=True), entry(rewatching=False))
    assert rewatch_started(entry(rewatching=True), None)
    assert not rewatch_started(entry(rewatching=True), entry(rewatching=True))


progress_values = st.integers(min_value=0, max_value=500)


@given(base=progress_values, local=progress_values, remote=progress_values)
def test_two_way_progress_never_goes_below_either_side_without_a_rewatch(
    base: int, local: int, remote: int
) -> None:
    result = merge_entry(
        base=entry(progress=base),
        local=entry(progress=local),
        remote=entry(progress=remote),
        direction=SyncDirection.TWO_WAY,
        local_updated_at=EARLIER,
        remote_updated_at=LATER,
    )

    merged = result.merged["progress"]
    changed = [value for value in (local, remote) if value != base]
    assert merged == (max(changed) if changed else base)
    assert set(result.merged) == set(SYNCED_FIELDS)
