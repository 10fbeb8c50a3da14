from __future__ import annotations

import io
import logging

import pytest
from django.core.management import CommandError, call_command

from kitsu_sync.models import KitsuToken

pytestmark = pytest.mark.django_db


def run_kitsu_link(*args: str, stdin: str) -> str:
    out = io.StringIO()
    call_command("kitsu_link", *args, stdin=io.StringIO(stdin), stdout=out)
    return out.getvalue()


def test_it_links_with_the_password_from_stdin(make_user, kitsu, sync_requests, caplog):
    caplog.set_level(logging.DEBUG)
    user = make_user("alice")
    special = kitsu.credentials(2)

    output = run_kitsu_link("alice", "--kitsu-login", special.slug, stdin=f"{special.password}\n")

    link = KitsuToken.objects.get(user=user)
    assert link.kitsu_user_id == special.user_id
    assert f"Linked alice to Kitsu account {special.name}" in output
    assert sync_requests.calls == [{"user_id": user.pk, "trigger": "link", "full": False}]
    assert special.password not in output
    assert special.password not in caplog.text


def test_wrong_credentials_fail_with_one_actionable_line(make_user, kitsu):
    make_user("alice")
    demo = kitsu.credentials(1)

    with pytest.raises(CommandError, match="not your display name") as info:
        run_kitsu_link("alice", "--kitsu-login", demo.name, stdin=f"{demo.password}\n")

    assert "\n" not in str(info.value)
    assert not KitsuToken.objects.exists()


def test_an_unknown_revenge_user_fails_before_reading_the_password(kitsu):
    with pytest.raises(CommandError, match="No Revenge user named 'nobody'"):
        run_kitsu_link("nobody", "--kitsu-login", "demo", stdin="pw\n")
    assert kitsu.stats()["total"] == 0


def test_an_empty_stdin_asks_for_the_password(make_user, kitsu):
    make_user("alice")
    with pytest.raises(CommandError, match="Enter your Kitsu password"):
        run_kitsu_link("alice", "--kitsu-login", "demo", stdin="")
    assert kitsu.stats()["total"] == 0
