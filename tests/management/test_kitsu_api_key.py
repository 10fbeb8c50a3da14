"""`manage.py kitsu_api_key USERNAME`: a key for scripts, printed once."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from kitsu_sync.models import ApiKey
from kitsu_sync.services import api_keys

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("kitsu_api_key", *args, stdout=out)
    return out.getvalue().strip()


def test_the_key_is_printed_once_and_works_for_that_user(make_user: Callable[..., Any]) -> None:
    user = make_user("alice")

    key = run("alice", "--name", "backup script", "--server-user", "alice", "--server-user", "Al")

    row = api_keys.authenticate(key)
    assert row is not None
    assert (row.user, row.name, row.server_users) == (user, "backup script", ["Al", "alice"])
    assert key not in {str(value) for value in vars(ApiKey.objects.get()).values()}


def test_an_unknown_user_is_an_error_and_no_key_is_made() -> None:
    with pytest.raises(CommandError, match="Unknown user: nobody"):
        run("nobody")
    assert not ApiKey.objects.exists()


def test_a_name_too_long_is_an_error(make_user: Callable[..., Any]) -> None:
    make_user("alice")

    with pytest.raises(CommandError, match="at most 100"):
        run("alice", "--name", "x" * 101)
