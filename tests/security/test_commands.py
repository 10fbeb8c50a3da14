"""The commands as scripts run them: a real process, bad input or an unreachable Kitsu, and
each time exactly one line on stderr, a non-zero exit, and nothing on stdout (but kitsu_sync's
per-user report line). The suite's LOG_LEVEL is DEBUG, so a stray log line would show.

The processes use this test's database (its rows are committed: transactional tests) and
KITSU_API_URL / KITSU_OAUTH_URL pointing at the sandbox or at a port nobody listens on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.celery_worker import current_database_url

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def run_command(*args: str, kitsu: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        ENV_FILE=str(ROOT / "tests" / "test.env"),
        DATABASE_URL=current_database_url(),
        KITSU_API_URL=f"{kitsu}/api/edge",
        KITSU_OAUTH_URL=f"{kitsu}/api/oauth",
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_failure(
    result: subprocess.CompletedProcess[str], expected: str, *, stdout: str = ""
) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith(stdout)
    if not stdout:
        assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (("kitsu_sync", "nobody"), "", "Unknown user: nobody."),
        (("kitsu_export", "nobody"), "", "Unknown user: nobody."),
        (("kitsu_link", "nobody", "--kitsu-login", "demo"), "pw\n", "No Revenge user named"),
        (("kitsu_lookup", "myspace/anime", "1"), "", "Unknown site"),
        (("kitsu_lookup", "mal", "one"), "", "are numbers"),
        (("kitsu_anime", "abc"), "", "invalid Kitsu anime id"),
        (("kitsu_anime", "-1"), "", "invalid Kitsu anime id"),
    ],
    ids=[
        "sync-unknown-user",
        "export-unknown-user",
        "link-unknown-user",
        "lookup-bad-site",
        "lookup-non-numeric-id",
        "anime-non-numeric-id",
        "anime-negative-id",
    ],
)
def test_bad_input_is_one_line_on_stderr_and_a_non_zero_exit(
    sandbox: Any, args: tuple[str, ...], stdin: str, expected: str
) -> None:
    result = run_command(*args, kitsu=sandbox.base_url, stdin=stdin)

    assert_one_line_failure(result, expected)
    assert sandbox.stats()["total"] == 0  # refused before any call to Kitsu


def test_an_unreachable_kitsu_fails_a_metadata_command_with_one_line(refused_url: str) -> None:
    result = run_command("kitsu_lookup", "mal", "1", kitsu=refused_url)

    assert_one_line_failure(result, "Kitsu could not be reached")


def test_an_unreachable_kitsu_fails_a_link_with_one_line_and_no_password(
    make_user: Any, refused_url: str
) -> None:
    make_user("alice")

    result = run_command(
        "kitsu_link",
        "alice",
        "--kitsu-login",
        "alice@example.test",
        kitsu=refused_url,
        stdin="Pa55 w0rd&=+%\n",
    )

    assert_one_line_failure(result, "Kitsu could not be reached")
    assert "Pa55" not in result.stderr


def test_an_unreachable_kitsu_fails_a_sync_with_one_line_and_keeps_the_link(
    sandbox: Any, linked_user: Any, refused_url: str
) -> None:
    user = linked_user("bob", sandbox=sandbox)

    result = run_command("kitsu_sync", "bob", kitsu=refused_url)

    # stdout keeps its one report line per user, as for a sync that worked.
    assert_one_line_failure(result, "Sync failed for bob", stdout="bob: failed (full")
    assert "Could not connect to Kitsu" in result.stderr
    user.kitsu_token.refresh_from_db()
    assert not user.kitsu_token.needs_relink
