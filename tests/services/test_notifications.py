"""Notices: each condition (a link to re-link, syncs failing in a row, shows waiting for a
match) is told once when it starts, through Apprise, to a local HTTP endpoint standing in for
the user's notification service (Apprise's json:// target)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from kitsu_sync import tasks
from kitsu_sync.models import (
    KitsuToken,
    Notice,
    NoticeDelivery,
    NoticeKind,
    SyncOutcome,
    SyncTrigger,
    UnmatchedItem,
    UnmatchedStatus,
)
from kitsu_sync.services import notifications
from kitsu_sync.services.sync import run_sync
from kitsu_sync.services.tokens import mark_needs_relink

pytestmark = pytest.mark.django_db

LIBRARY = "/api/edge/library-entries"


class Inbox:
    """What the stand-in notification service received; `status` is what it answers."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self.url = ""


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    received = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.posts.append(json.loads(body))
            self.send_response(received.status)
            if 300 <= received.status < 400:
                self.send_header("Location", self.path)  # here again
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    received.url = f"json://127.0.0.1:{server.server_address[1]}/"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_targets(settings: Any) -> Any:
    """The stand-in service listens on 127.0.0.1, which users' URLs may name only when allowed."""
    settings.APPRISE_ALLOW_LOCAL_TARGETS = True
    settings.APPRISE_DEFAULT_URL = ""
    return settings


@pytest.fixture
def sent_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """send_notice runs in this process (eagerly, retries included) instead of a worker."""
    monkeypatch.setattr(
        tasks.send_notice, "delay", lambda notice_id: tasks.send_notice.apply(args=(notice_id,))
    )


def notify_to(user: Any, url: str) -> None:
    notifications.save_apprise_url(user_id=user.pk, url=url)


# --- re-link --------------------------------------------------------------------------------


def test_a_refresh_rejected_mid_sync_tells_the_user_once(
    inbox,
    local_targets,
    sent_at_once,
    kitsu,
    link_user,
    make_user,
    django_capture_on_commit_callbacks,
):
    user = make_user()
    link = link_user(user, kitsu, expires_in=timedelta(days=1))
    notify_to(user, inbox.url)
    kitsu.revoke_tokens(link.kitsu_user_id)

    with django_capture_on_commit_callbacks(execute=True):
        first = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)
        second = run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL)
        mark_needs_relink(user_id=user.pk, reason="Marked again by another worker.")

    assert (first.outcome, second.outcome) == (SyncOutcome.FAILED, SyncOutcome.FAILED)
    [post] = inbox.posts
    assert post["title"] == "Revenge: Kitsu needs linking again"
    assert "link your account again" in post["message"]
    assert f"Revenge user {user.username}" in post["message"]
    notice = Notice.objects.get(user=user)
    assert (notice.kind, notice.delivery, notice.attempts) == ("relink", "sent", 1)


def test_a_relink_flag_cleared_before_its_notice_is_sent_is_not_told(
    inbox, local_targets, kitsu, link_user, make_user
):
    user = make_user()
    link_user(user, kitsu)
    notify_to(user, inbox.url)
    mark_needs_relink(user_id=user.pk, reason="Refused by Kitsu.")  # its task not run yet
    # A refresh that raced with the refused one worked, and cleared the flag (no post_save).
    KitsuToken.objects.filter(user=user).update(needs_relink=False, relink_reason="")
    notice = Notice.objects.get(user=user)

    assert notifications.send_notice(notice_id=notice.pk) == "ended"

    assert inbox.posts == []
    notice.refresh_from_db()
    assert notice.ended_at is not None
    assert notice.delivery == "pending"


def test_linking_again_ends_the_condition_and_a_later_one_is_told_again(
    inbox,
    local_targets,
    sent_at_once,
    kitsu,
    link_user,
    make_user,
    django_capture_on_commit_callbacks,
):
    user = make_user()
    link_user(user, kitsu)
    notify_to(user, inbox.url)

    for reason in ("Refused.", "Refused again."):
        with django_capture_on_commit_callbacks(execute=True):
            mark_needs_relink(user_id=user.pk, reason=reason)
        link_user(user, kitsu)

    assert len(inbox.posts) == 2
    first, second = (post["message"] for post in inbox.posts)
    assert "paused. Refused.\n" in first
    assert "paused. Refused again.\n" in second
    assert not notifications.open_notices(user_id=user.pk)


# --- syncs failing in a row -------------------------------------------------------------------


def test_the_nth_failed_sync_in_a_row_is_told_once_and_a_success_ends_it(
    inbox, local_targets, sent_at_once, kitsu, linked_user, django_capture_on_commit_callbacks
):
    local_targets.KITSU_NOTIFY_FAILED_SYNCS = 3
    user = linked_user()
    notify_to(user, inbox.url)
    kitsu.set_faults(
        [{"kind": "status", "status": 500, "path": LIBRARY, "method": "GET", "count": None}]
    )

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL).outcome]
        outcomes.append(run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL).outcome)
        assert not inbox.posts
        outcomes += [run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL).outcome for _ in "ab"]

    assert outcomes == [SyncOutcome.FAILED] * 4
    [post] = inbox.posts
    assert post["title"] == "Revenge: Syncs keep failing"
    assert "Your last 3 Kitsu syncs failed" in post["message"]
    assert "HTTP 500" in post["message"]

    kitsu.set_faults([])
    with django_capture_on_commit_callbacks(execute=True):
        assert run_sync(user_id=user.pk, trigger=SyncTrigger.MANUAL).outcome == "success"

    assert not notifications.open_notices(user_id=user.pk)
    assert len(inbox.posts) == 1


# --- shows waiting for a match ------------------------------------------------------------------


def unmatched(user: Any, title: str, *, hours_ago: float) -> UnmatchedItem:
    seen = timezone.now() - timedelta(hours=hours_ago)
    return UnmatchedItem.objects.create(
        user=user,
        source="jellyfin",
        site="tvdb",
        external_id=title.lower().replace(" ", "-"),
        season=1,
        title=title,
        first_seen=seen,
        last_seen=seen,
    )


def test_a_show_waiting_longer_than_the_setting_is_told_once_until_matched(
    inbox, local_targets, sent_at_once, make_user
):
    local_targets.KITSU_NOTIFY_UNMATCHED_AFTER = timedelta(hours=24)
    user = make_user()
    notify_to(user, inbox.url)
    old = unmatched(user, "Frieren", hours_ago=30)
    unmatched(user, "Too Recent", hours_ago=2)

    assert tasks.notify_conditions.apply().get() == 1
    assert tasks.notify_conditions.apply().get() == 0

    [post] = inbox.posts
    assert "Frieren" in post["message"]
    assert "Too Recent" not in post["message"]
    UnmatchedItem.objects.filter(pk=old.pk).update(status=UnmatchedStatus.MATCHED)
    tasks.notify_conditions.apply()
    assert not notifications.open_notices(user_id=user.pk)


# --- where notices go -------------------------------------------------------------------------


def test_without_a_url_of_their_own_the_operators_channel_gets_it(
    inbox, local_targets, sent_at_once, make_user
):
    local_targets.APPRISE_DEFAULT_URL = inbox.url
    user = make_user()
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.SYNC_FAILING, message="x")

    assert notifications.send_notice(notice_id=notice.pk) == NoticeDelivery.SENT
    assert notifications.send_notice(notice_id=notice.pk) == NoticeDelivery.SENT  # not again
    [post] = inbox.posts
    assert f"Revenge user {user.username}" in post["message"]


def test_with_no_url_anywhere_the_notice_stays_on_the_dashboard(local_targets, make_user):
    user = make_user()
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.UNMATCHED, message="x")

    assert notifications.send_notice(notice_id=notice.pk) == NoticeDelivery.DASHBOARD
    assert notifications.lost_notices(now=timezone.now() + timedelta(hours=1)) == []


def test_a_refusing_service_is_tried_a_bounded_number_of_times_and_the_url_is_never_recorded(
    inbox, local_targets, sent_at_once, make_user
):
    inbox.status = 500
    user = make_user()
    notify_to(user, inbox.url)
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.UNMATCHED, message="x")

    tasks.send_notice.delay(notice.pk)

    notice.refresh_from_db()
    assert (notice.delivery, notice.attempts) == (NoticeDelivery.FAILED, 4)
    assert len(inbox.posts) == notifications.MAX_SEND_ATTEMPTS
    assert "127.0.0.1" not in notice.last_error
    assert notice.last_error


def test_a_lost_pending_notice_is_sent_by_beat(inbox, local_targets, sent_at_once, make_user):
    user = make_user()
    notify_to(user, inbox.url)
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.SYNC_FAILING, message="x")
    Notice.objects.filter(pk=notice.pk).update(started_at=timezone.now() - timedelta(hours=1))

    assert tasks.notify_conditions.apply().get() == 1

    assert len(inbox.posts) == 1
    assert Notice.objects.get(pk=notice.pk).delivery == NoticeDelivery.SENT


def test_the_apprise_url_is_stored_encrypted(make_user):
    user = make_user()
    secret = "tgram://123456789:very-secret-bot-token/987654"
    notifications.save_apprise_url(user_id=user.pk, url=secret)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT apprise_url FROM kitsu_sync_notificationsettings WHERE user_id = %s",
            [user.pk],
        )
        [stored] = cursor.fetchone()

    assert "very-secret-bot-token" not in stored
    assert notifications.user_apprise_url(user_id=user.pk) == secret


# --- users' URLs may not reach the server's own network ------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "json://127.0.0.1:6379/",
        "jsons://10.1.2.3/hook",
        "gotify://192.168.1.5/token",
        "json://[::1]:8000/",
        "ntfy://localhost/topic",
        "json://169.254.169.254/latest/meta-data",
        "json://2130706433:8000/",  # 127.0.0.1 written as one number
        "json://017700000001/",  # and in octal
        "mailto://user:pw@example.com/?smtp=127.0.0.1&to=a@example.com",  # the mail server
    ],
)
def test_a_users_url_naming_a_local_address_is_refused_by_default(settings, url):
    settings.APPRISE_ALLOW_LOCAL_TARGETS = False

    assert "local or private address" in notifications.apprise_url_problem(url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ntfys://ntfy.sh/topic json://127.0.0.1:8000/", "One Apprise URL only"),
        ("json://93.184.215.14/a,json://127.0.0.1:8000/", "One Apprise URL only"),
        ("json://93.184.215.14/hook?redirect=yes", "follow redirects"),
    ],
)
def test_a_second_url_or_followed_redirects_cannot_slip_past_the_check(settings, url, problem):
    settings.APPRISE_ALLOW_LOCAL_TARGETS = False

    assert problem in notifications.apprise_url_problem(url)


def test_a_notice_is_not_sent_on_through_a_redirect(inbox, local_targets, make_user):
    user = make_user()
    inbox.status = 307  # the stand-in service answers every post with a redirect
    notify_to(user, inbox.url)
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.UNMATCHED, message="x")

    assert notifications.send_notice(notice_id=notice.pk) == NoticeDelivery.FAILED
    assert len(inbox.posts) == 1  # the redirect was not followed with a second post


def test_a_send_cut_off_midway_still_counts_as_an_attempt(
    inbox, local_targets, make_user, monkeypatch
):
    user = make_user()
    notify_to(user, inbox.url)
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.UNMATCHED, message="x")

    def cut_off(*args, **kwargs):
        raise TimeoutError("the task's time limit")

    monkeypatch.setattr(notifications, "_deliver", cut_off)
    with pytest.raises(TimeoutError):
        notifications.send_notice(notice_id=notice.pk)

    notice.refresh_from_db()
    assert (notice.attempts, notice.delivery) == (1, NoticeDelivery.PENDING)


def test_a_url_the_key_no_longer_decrypts_can_be_replaced(local_targets, make_user):
    user = make_user()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO kitsu_sync_notificationsettings (user_id, apprise_url, updated_at) "
            "VALUES (%s, %s, now())",
            [user.pk, "gAAAAA-encrypted-with-a-key-that-is-gone"],
        )

    notifications.save_apprise_url(user_id=user.pk, url="ntfys://ntfy.sh/new-topic")

    assert notifications.user_apprise_url(user_id=user.pk) == "ntfys://ntfy.sh/new-topic"


def test_urls_of_public_services_and_unknown_schemes(settings):
    settings.APPRISE_ALLOW_LOCAL_TARGETS = False

    assert notifications.apprise_url_problem("tgram://123456789:abcdef/12345") == ""
    assert notifications.apprise_url_problem("json://93.184.215.14/hook") == ""
    assert "does not recognise" in notifications.apprise_url_problem("https://example.org/")


def test_a_stored_local_url_is_not_posted_to_once_local_targets_are_disallowed(
    inbox, local_targets, make_user
):
    user = make_user()
    notify_to(user, inbox.url)  # saved while the operator allowed local targets
    local_targets.APPRISE_ALLOW_LOCAL_TARGETS = False
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.UNMATCHED, message="x")

    assert notifications.send_notice(notice_id=notice.pk) == NoticeDelivery.DASHBOARD
    assert inbox.posts == []


def test_a_url_the_token_key_no_longer_decrypts_counts_as_none(local_targets, make_user):
    user = make_user()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO kitsu_sync_notificationsettings (user_id, apprise_url, updated_at) "
            "VALUES (%s, %s, now())",
            [user.pk, "gAAAAA-encrypted-with-a-key-that-is-gone"],
        )

    assert notifications.user_apprise_url(user_id=user.pk) == ""
    notice = notifications.open_notice(user_id=user.pk, kind=NoticeKind.UNMATCHED, message="x")
    assert notifications.send_notice(notice_id=notice.pk) == NoticeDelivery.DASHBOARD
