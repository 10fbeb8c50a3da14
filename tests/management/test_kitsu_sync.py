"""`manage.py kitsu_sync`: in-process syncs, with the sandbox over real HTTP."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from kitsu_sync.models import LibraryEntry, SyncRun
from tests.sync_support import kitsu_delete_entry

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("kitsu_sync", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_it_syncs_the_named_user_and_prints_what_happened(kitsu: Any, linked_user: Any) -> None:
    user = linked_user("alice")

    output = run_command("alice")

    count = LibraryEntry.objects.filter(user=user).count()
    assert count > 0
    assert output.startswith(f"alice: succeeded (full, import only): fetched {count}, ")
    assert f"created {count}," in output
    run = SyncRun.objects.get(user=user)
    assert run.trigger == "command"


def test_a_dry_run_prints_the_changes_and_makes_none(kitsu: Any, linked_user: Any) -> None:
    user = linked_user("alice")

    output = run_command("alice", "--dry-run")

    assert not LibraryEntry.objects.filter(user=user).exists()
    assert "(dry run, full, import only)" in output
    record = next(e for e in kitsu.store.entries_by_user[1001] if e.kind == "anime")
    title = kitsu.store.anime_by_id(record.media_id).canonical_title
    assert f"  would create on Revenge: {title}: status None -> " in output
    assert f"progress None -> {record.progress}," in output
    assert output.count("would create on Revenge") == SyncRun.objects.get(user=user).created


def test_all_syncs_every_linked_user(kitsu: Any, linked_user: Any, make_user: Any) -> None:
    linked_user("alice", index=1)
    linked_user("bob", index=2)
    make_user("carol")

    output = run_command("--all")

    assert [line.split(":")[0] for line in output.splitlines() if not line.startswith(" ")] == [
        "alice",
        "bob",
    ]
    assert not SyncRun.objects.filter(user__username="carol").exists()


def test_full_removes_entries_deleted_on_kitsu(kitsu: Any, linked_user: Any) -> None:
    user = linked_user("alice")
    run_command("alice")
    gone = LibraryEntry.objects.filter(user=user).order_by("kitsu_entry_id").first()
    kitsu_delete_entry(kitsu, gone.kitsu_entry_id)

    assert "deleted 0," in run_command("alice")
    assert "deleted 1," in run_command("alice", "--full")
    assert not LibraryEntry.objects.filter(pk=gone.pk).exists()


def test_an_unknown_user_is_one_clear_error(kitsu: Any, linked_user: Any) -> None:
    linked_user("alice")

    with pytest.raises(CommandError, match=r"^Unknown user: ghost\.$"):
        run_command("alice", "ghost")
    assert not SyncRun.objects.exists()


def test_it_needs_users_or_all(kitsu: Any) -> None:
    with pytest.raises(CommandError, match="Name one or more users, or use --all"):
        run_command()
    with pytest.raises(CommandError, match="not both"):
        run_command("alice", "--all")


def test_an_unreachable_kitsu_fails_with_one_line(
    kitsu: Any, linked_user: Any, kitsu_at: Any, refused_url: str
) -> None:
    user = linked_user("alice")
    kitsu_at(api_url=f"{refused_url}/api/edge", oauth_url=kitsu.oauth_url)

    with pytest.raises(CommandError) as failure:
        run_command("alice")

    message = str(failure.value)
    assert message.startswith("Sync failed for alice (Could not connect to Kitsu at 127.0.0.1:")
    assert "\n" not in message
    assert not LibraryEntry.objects.filter(user=user).exists()


def test_it_shows_a_progress_bar_on_a_terminal(kitsu: Any, linked_user: Any, capsys: Any) -> None:
    linked_user("alice")

    call_command("kitsu_sync", "alice", stdout=io.StringIO(), stderr=Terminal())

    assert "alice:" in capsys.readouterr().err
