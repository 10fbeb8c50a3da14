from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from cryptography.fernet import Fernet
from django.db import connection
from django.db.models import F
from django.utils import timezone

from kitsu_sync.kitsu_api import (
    KitsuClient,
    KitsuInvalidGrant,
    KitsuServerError,
    KitsuUnauthorized,
    Resource,
    TokenResponse,
    Transport,
    refresh_grant,
)
from kitsu_sync.kitsu_client import get_kitsu_client, get_transport
from kitsu_sync.models import (
    Anime,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    Notice,
    WatchStatus,
)
from kitsu_sync.services import tokens
from kitsu_sync.services.tokens import (
    NeedsRelink,
    NotLinked,
    get_access_token,
    refresh_access_token,
    store_link,
    unlink,
)
from tests.celery_worker import current_database_url
from tests.kitsu_api import payloads
from tests.sync_support import sandbox_grant

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db

TOKEN_ROUTE = "POST /api/oauth/token"


def token_requests(sandbox: Any) -> int:
    return sandbox.stats()["by_route"].get(TOKEN_ROUTE, 0)


def test_it_returns_the_stored_token_without_asking_kitsu_when_far_from_expiry(
    make_user, link_user, kitsu
):
    user = make_user()
    link = link_user(user, kitsu)
    kitsu.reset(data=False, tokens=False)

    assert get_access_token(user_id=user.pk) == link.access_token
    assert kitsu.stats()["total"] == 0


def test_it_refreshes_a_token_that_expires_within_the_margin(make_user, link_user, kitsu):
    user = make_user()
    old = link_user(user, kitsu, expires_in=timedelta(days=2))
    before = token_requests(kitsu)

    token = get_access_token(user_id=user.pk)

    assert token != old.access_token
    assert token_requests(kitsu) - before == 1
    stored = KitsuToken.objects.get(user=user)
    assert stored.access_token == token
    assert stored.refresh_token != old.refresh_token
    assert stored.token_expires_at > timezone.now() + timedelta(days=29)
    assert stored.refresh_claimed_until is None
    # The new token works, and Kitsu spent the old refresh token.
    me = get_kitsu_client().current_user(token=token)
    assert me is not None
    assert me.id == stored.kitsu_user_id


def test_a_reused_token_is_trusted_for_the_time_it_has_left_not_refreshed_at_once(
    sandbox_factory, fake_clock, kitsu_at, make_user
):
    # Doorkeeper's reuse_access_token: a second password grant while the first token is
    # valid answers with that token, its original created_at and the seconds it has left.
    sandbox = kitsu_at(sandbox_factory(clock=fake_clock))
    credential = sandbox.credentials(1)
    first = sandbox_grant(sandbox, credential)
    fake_clock.advance(timedelta(days=20).total_seconds())
    again = sandbox_grant(sandbox, credential)
    user = make_user()
    profile = Resource(type="users", id=credential.user_id, attributes={"slug": credential.slug})
    store_link(user=user, token=again, kitsu_user=profile, flow="password")
    asked = sandbox.stats()["total"]

    token = get_access_token(user_id=user.pk)

    assert again.access_token == first.access_token == token
    assert again.created_at == first.created_at
    assert again.expires_in == timedelta(days=10).total_seconds()
    left = KitsuToken.objects.get(user=user).token_expires_at - timezone.now()
    assert timedelta(days=9, hours=23) < left <= timedelta(days=10)
    assert sandbox.stats()["total"] == asked, "a token with ten days left is not refreshed"


def test_a_refresh_after_401_returns_the_successor_another_process_already_stored(
    make_user, link_user, kitsu
):
    user = make_user()
    old = link_user(user, kitsu)
    fresh = refresh_access_token(user_id=user.pk, rejected_token=old.access_token)
    assert token_requests(kitsu) == 2  # the link's password grant, then one refresh

    # A second worker that also saw the old token rejected gets the new one, no request.
    again = refresh_access_token(user_id=user.pk, rejected_token=old.access_token)

    assert again == fresh != old.access_token
    assert token_requests(kitsu) == 2


def test_invalid_grant_on_refresh_marks_the_link_for_relink_and_stops_using_it(
    make_user, link_user, kitsu
):
    user = make_user()
    link = link_user(user, kitsu, expires_in=timedelta(hours=1))
    kitsu.revoke_tokens(link.kitsu_user_id)

    with pytest.raises(NeedsRelink, match="Link Kitsu again"):
        get_access_token(user_id=user.pk)

    stored = KitsuToken.objects.get(user=user)
    assert stored.needs_relink
    assert "rejected the refresh token" in stored.relink_reason
    assert stored.refresh_claimed_until is None
    requests_before = kitsu.stats()["total"]
    with pytest.raises(NeedsRelink):
        refresh_access_token(user_id=user.pk, rejected_token=link.access_token)
    assert kitsu.stats()["total"] == requests_before


def test_an_unlinked_user_gets_not_linked(make_user):
    with pytest.raises(NotLinked, match="Link Kitsu"):
        get_access_token(user_id=make_user().pk)


def test_a_passing_failure_of_an_early_refresh_keeps_the_still_valid_token(
    make_user, link_user, kitsu, caplog
):
    user = make_user()
    link = link_user(user, kitsu, expires_in=timedelta(days=1))
    kitsu.set_faults([{"kind": "status", "status": 503, "path": "/api/oauth/token"}])

    with caplog.at_level(logging.WARNING, logger="kitsu_sync.services.tokens"):
        assert get_access_token(user_id=user.pk) == link.access_token

    stored = KitsuToken.objects.get(user=user)
    assert stored.refresh_claimed_until is None
    assert not stored.needs_relink
    assert "still works" in caplog.text


def test_a_passing_failure_after_expiry_raises_a_retryable_kitsu_error(make_user, link_user, kitsu):
    user = make_user()
    link_user(user, kitsu, expires_in=timedelta(seconds=-5))
    kitsu.set_faults([{"kind": "status", "status": 503, "path": "/api/oauth/token"}])

    with pytest.raises(KitsuServerError) as info:
        get_access_token(user_id=user.pk)

    assert info.value.retryable
    stored = KitsuToken.objects.get(user=user)
    assert not stored.needs_relink
    assert stored.refresh_claimed_until is None


def test_a_waiting_worker_uses_the_token_the_claim_holder_stores(make_user, link_user, kitsu):
    user = make_user()
    link = link_user(user, kitsu)
    KitsuToken.objects.filter(pk=link.pk).update(
        refresh_claimed_until=timezone.now() + timedelta(minutes=1)
    )
    polls: list[float] = []

    def other_worker_finishes(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            KitsuToken.objects.filter(pk=link.pk).update(
                access_token="stored-by-the-claim-holder", refresh_claimed_until=None
            )

    requests_before = token_requests(kitsu)
    token = tokens._refresh(
        user.pk, seen_token=link.access_token, forced=True, sleep=other_worker_finishes
    )

    assert token == "stored-by-the-claim-holder"
    assert len(polls) == 3
    assert token_requests(kitsu) == requests_before


def test_a_claim_left_by_a_dead_worker_is_taken_over_once_it_lapses(make_user, link_user, kitsu):
    user = make_user()
    link = link_user(user, kitsu)
    KitsuToken.objects.filter(pk=link.pk).update(
        refresh_claimed_until=timezone.now() - timedelta(seconds=1)
    )

    token = refresh_access_token(user_id=user.pk, rejected_token=link.access_token)

    assert token != link.access_token
    assert KitsuToken.objects.get(pk=link.pk).refresh_claimed_until is None


def test_tokens_unreadable_after_a_key_change_mark_the_link_for_relink(
    make_user, link_user, kitsu, settings
):
    user = make_user()
    link_user(user, kitsu)
    settings.KITSU_TOKEN_KEY = Fernet.generate_key().decode()

    with pytest.raises(NeedsRelink, match="KITSU_TOKEN_KEY"):
        get_access_token(user_id=user.pk)

    flags = KitsuToken.objects.filter(user=user).values("needs_relink", "relink_reason").get()
    assert flags["needs_relink"]
    assert "KITSU_TOKEN_KEY" in flags["relink_reason"]


def test_refreshing_never_logs_a_token(make_user, link_user, kitsu, caplog):
    user = make_user()
    old = link_user(user, kitsu, expires_in=timedelta(days=1))
    caplog.set_level(logging.DEBUG)

    new = get_access_token(user_id=user.pk)

    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records
    )
    assert "Refreshed the Kitsu token" in logged
    for secret in (old.access_token, old.refresh_token, new):
        assert secret not in logged


# --- concurrency: one refresh request whatever the number of workers -----------------------


@pytest.mark.django_db(transaction=True)
def test_threads_refreshing_the_same_user_at_once_send_one_refresh_request(
    make_user, link_user, kitsu
):
    user = make_user()
    old = link_user(user, kitsu)
    before = token_requests(kitsu)
    # Slow answers make the workers overlap for sure.
    kitsu.set_latency(300)
    workers = 5
    barrier = threading.Barrier(workers)
    results: list[str] = []
    errors: list[Exception] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(refresh_access_token(user_id=user.pk, rejected_token=old.access_token))
        except Exception as exc:  # reported by the assertions below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert len(results) == workers
    assert len(set(results)) == 1
    assert results[0] != old.access_token
    assert token_requests(kitsu) - before == 1
    assert KitsuToken.objects.get(user=user).access_token == results[0]


CHILD_SCRIPT = """
import sys
import django

django.setup()
from kitsu_sync.services.tokens import refresh_access_token

print("ready", flush=True)
user_id, rejected = sys.stdin.readline().split()
print(refresh_access_token(user_id=int(user_id), rejected_token=rejected), flush=True)
"""


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    """The child's next line, or a failure once the deadline passes (never a hang)."""
    assert process.stdout is not None
    remaining = max(deadline - time.monotonic(), 0)
    readable, _, _ = select.select([process.stdout], [], [], remaining)
    assert readable, "a child process did not answer before the deadline"
    return process.stdout.readline().strip()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_processes_refreshing_the_same_user_at_once_send_one_refresh_request(
    make_user, link_user, kitsu
):
    user = make_user()
    old = link_user(user, kitsu)
    before = token_requests(kitsu)
    kitsu.set_latency(300)
    env = {
        **os.environ,
        "ENV_FILE": str(PROJECT_ROOT / "tests" / "test.env"),
        "DJANGO_SETTINGS_MODULE": "revenge_site.settings",
        "DATABASE_URL": current_database_url(),
        "KITSU_API_URL": kitsu.api_url,
        "KITSU_OAUTH_URL": kitsu.oauth_url,
        "KITSU_CLIENT_ID": kitsu.client_id,
        "KITSU_CLIENT_SECRET": kitsu.client_secret,
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        deadline = time.monotonic() + 60
        # Every child has started Django before any of them refreshes.
        assert [_read_line(child, deadline) for child in children] == ["ready"] * 3
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"{user.pk} {old.access_token}\n")
            child.stdin.flush()
        results = [_read_line(child, deadline) for child in children]
        for child in children:
            assert child.wait(timeout=30) == 0, child.stderr.read() if child.stderr else ""
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    assert len(set(results)) == 1
    assert results[0] not in ("", old.access_token)
    assert token_requests(kitsu) - before == 1


# --- storing and removing a link ------------------------------------------------------------


def _token(access: str = "access-1", refresh: str | None = "refresh-1") -> TokenResponse:
    return TokenResponse(
        access_token=access,
        refresh_token=refresh,
        token_type="Bearer",
        expires_in=2_592_000,
        scope="public",
        created_at=timezone.now(),
    )


def _kitsu_user(kitsu_id: str = "1001", **attributes: Any) -> Resource:
    avatar = {"tiny": "https://media.example/t.jpg", "medium": "https://media.example/m.jpg"}
    profile = payloads.demo_user_attributes(**{"avatar": avatar, **attributes})
    return Resource(type="users", id=kitsu_id, attributes=profile)


def test_store_link_creates_then_replaces_the_users_link(make_user):
    user = make_user()
    first = store_link(user=user, token=_token(), kitsu_user=_kitsu_user(), flow="password")
    KitsuToken.objects.filter(pk=first.pk).update(needs_relink=True, relink_reason="x")

    second = store_link(
        user=user,
        token=_token("access-2", None),
        kitsu_user=_kitsu_user(name="Renamed"),
        flow="authorization_code",
    )

    assert second.pk == first.pk
    stored = KitsuToken.objects.get(user=user)
    assert stored.access_token == "access-2"
    # The new answer had no refresh token: the one stored for this account is kept.
    assert stored.refresh_token == "refresh-1"
    assert stored.kitsu_display_name == "Renamed"
    assert stored.kitsu_username == "demo"
    assert stored.kitsu_avatar_url == "https://media.example/m.jpg"
    assert stored.auth_flow == "authorization_code"
    assert not stored.needs_relink
    assert stored.relink_reason == ""
    assert 29 <= (stored.token_expires_at - timezone.now()).days <= 30


def test_store_link_to_another_kitsu_account_restarts_the_incremental_sync(make_user):
    user = make_user()
    store_link(user=user, token=_token(), kitsu_user=_kitsu_user("1001"), flow="password")
    KitsuSyncState.objects.create(
        user=user, cursor_updated_at=timezone.now(), last_full_sync_at=timezone.now()
    )

    store_link(user=user, token=_token(), kitsu_user=_kitsu_user("1002"), flow="password")

    state = KitsuSyncState.objects.get(user=user)
    assert state.cursor_updated_at is None
    assert state.last_full_sync_at is None


def test_a_link_to_another_account_without_a_refresh_token_keeps_none_of_the_old_one(make_user):
    user = make_user()
    store_link(user=user, token=_token(), kitsu_user=_kitsu_user("1001"), flow="password")

    store_link(user=user, token=_token("a2", None), kitsu_user=_kitsu_user("1002"), flow="password")

    assert KitsuToken.objects.get(user=user).refresh_token == ""


def test_store_link_rejects_an_unknown_flow(make_user):
    with pytest.raises(ValueError, match="Unknown auth flow"):
        store_link(user=make_user(), token=_token(), kitsu_user=_kitsu_user(), flow="implicit")


def _linked_with_library(make_user) -> Any:
    user = make_user()
    kitsu_id = str(5000 + user.pk)
    store_link(user=user, token=_token(), kitsu_user=_kitsu_user(kitsu_id), flow="password")
    SocialAccount.objects.create(user=user, provider="kitsu", uid=kitsu_id, extra_data={})
    anime, _ = Anime.objects.get_or_create(kitsu_id=1, defaults={"title": "Cowboy Bebop"})
    LibraryEntry.objects.create(user=user, anime=anime, status=WatchStatus.COMPLETED)
    KitsuSyncState.objects.create(user=user, entries_synced=1, cursor_updated_at=timezone.now())
    return user


@pytest.mark.parametrize(("delete_library", "entries_left"), [(False, 1), (True, 0)])
def test_unlink_removes_tokens_and_social_account_and_keeps_or_deletes_the_list(
    make_user, delete_library, entries_left
):
    user = _linked_with_library(make_user)
    other = _linked_with_library(make_user)

    unlink(user=user, delete_library=delete_library)

    assert not KitsuToken.objects.filter(user=user).exists()
    assert not SocialAccount.objects.filter(user=user).exists()
    assert LibraryEntry.objects.filter(user=user).count() == entries_left
    assert KitsuSyncState.objects.get(user=user).cursor_updated_at is None
    # Nobody else's link or list is touched.
    assert KitsuToken.objects.filter(user=other).exists()
    assert LibraryEntry.objects.filter(user=other).count() == 1
    assert not SocialToken.objects.exists()


# --- revocation at Kitsu on unlink -------------------------------------------------------------


def test_unlink_has_kitsu_revoke_the_tokens_so_a_copy_of_them_is_worthless(
    make_user, link_user, kitsu
):
    user = make_user()
    link = link_user(user, kitsu)
    access, refresh = link.access_token, link.refresh_token
    transport = Transport(api_url=kitsu.api_url, oauth_url=kitsu.oauth_url)

    assert unlink(user=user, delete_library=False) is True

    assert not KitsuToken.objects.filter(user=user).exists()
    with pytest.raises(KitsuUnauthorized):
        KitsuClient(transport).current_user(token=access)
    with pytest.raises(KitsuInvalidGrant):
        refresh_grant(
            transport,
            refresh_token=refresh,
            client_id=kitsu.client_id,
            client_secret=kitsu.client_secret,
        )


def test_unlink_goes_ahead_at_once_when_kitsu_cannot_be_told(make_user, caplog):
    user = _linked_with_library(make_user)  # settings point at a closed port
    secret = KitsuToken.objects.get(user=user).refresh_token

    with caplog.at_level(logging.INFO):
        assert unlink(user=user, delete_library=False) is False

    assert not KitsuToken.objects.filter(user=user).exists()
    assert LibraryEntry.objects.filter(user=user).count() == 1
    assert "did not revoke" in caplog.text
    assert secret not in caplog.text
    assert "Retrying" not in caplog.text, "one attempt: a person is waiting"


# --- a refresh that outlasts its claim ----------------------------------------------------------


def run_during_the_refresh(monkeypatch: pytest.MonkeyPatch, other_worker: Any) -> list[str]:
    """Make the first refresh request hold: once Kitsu has answered it (and so spent the
    refresh token), `other_worker` runs before that answer reaches the refreshing worker.
    Returns the refresh tokens sent, in order."""
    real_refresh_grant = tokens.refresh_grant
    sent: list[str] = []

    def refresh_grant(*args: Any, **kwargs: Any) -> TokenResponse:
        sent.append(kwargs["refresh_token"])
        answer = real_refresh_grant(*args, **kwargs)
        if len(sent) == 1:
            other_worker()
        return answer

    monkeypatch.setattr(tokens, "refresh_grant", refresh_grant)
    return sent


def test_a_refresh_that_outlasted_its_claim_clears_the_relink_flag_of_the_refresh_it_raced(
    make_user, link_user, kitsu, monkeypatch
):
    user = make_user()
    old = link_user(user, kitsu)
    raced: list[NeedsRelink] = []

    def second_worker() -> None:
        # The first refresh's claim has lapsed: a second worker takes it and sends the same
        # refresh token, which Kitsu has just spent on the first.
        KitsuToken.objects.filter(user=user).update(
            refresh_claimed_until=timezone.now() - timedelta(seconds=1)
        )
        with pytest.raises(NeedsRelink) as caught:
            refresh_access_token(user_id=user.pk, rejected_token=old.access_token)
        raced.append(caught.value)
        assert KitsuToken.objects.get(user=user).needs_relink

    sent = run_during_the_refresh(monkeypatch, second_worker)

    token = refresh_access_token(user_id=user.pk, rejected_token=old.access_token)

    assert len(raced) == 1
    assert sent == [old.refresh_token, old.refresh_token]
    stored = KitsuToken.objects.get(user=user)
    assert not stored.needs_relink
    assert stored.relink_reason == ""
    assert stored.refresh_claimed_until is None
    # The notice the lost race opened is over too, so a later real one is told.
    assert not Notice.objects.filter(user=user, ended_at__isnull=True).exists()
    assert stored.access_token == token != old.access_token
    # The link is in use again, and its token works at Kitsu.
    assert get_access_token(user_id=user.pk) == token
    assert get_kitsu_client().current_user(token=token).id == stored.kitsu_user_id


def test_linking_another_account_during_a_refresh_keeps_the_new_accounts_tokens(
    make_user, link_user, kitsu, monkeypatch
):
    user = make_user()
    old = link_user(user, kitsu, 1)
    relinked: list[KitsuToken] = []

    def link_another_account() -> None:
        relinked.append(link_user(user, kitsu, 2))

    run_during_the_refresh(monkeypatch, link_another_account)

    refresh_access_token(user_id=user.pk, rejected_token=old.access_token)

    stored = KitsuToken.objects.get(user=user)
    assert stored.kitsu_user_id == relinked[0].kitsu_user_id != old.kitsu_user_id
    assert (stored.access_token, stored.refresh_token) == (
        relinked[0].access_token,
        relinked[0].refresh_token,
    )
    assert get_kitsu_client().current_user(token=stored.access_token).id == stored.kitsu_user_id


def test_a_relink_flag_raised_for_another_reason_during_a_refresh_stays(
    make_user, link_user, kitsu, monkeypatch
):
    user = make_user()
    old = link_user(user, kitsu)

    def key_lost() -> None:
        tokens.mark_needs_relink(user_id=user.pk, reason=tokens.RELINK_UNREADABLE)

    run_during_the_refresh(monkeypatch, key_lost)

    refresh_access_token(user_id=user.pk, rejected_token=old.access_token)

    stored = KitsuToken.objects.get(user=user)
    assert stored.needs_relink
    assert stored.relink_reason == tokens.RELINK_UNREADABLE


class Polled(Exception):
    """A waiting worker found the claim held and was about to poll again."""


def test_the_refresh_claim_outlasts_the_longest_refresh(make_user, link_user, kitsu, monkeypatch):
    user = make_user()
    old = link_user(user, kitsu)
    transport = get_transport()
    # What one refresh may take: the rate limiter's longest wait, then the whole deadline
    # of every attempt.
    longest = timedelta(
        seconds=transport.rate_limit_wait + transport.deadline * transport.retry.attempts
    )

    def polls(seconds: float) -> None:
        raise Polled

    def second_worker_that_long_after() -> None:
        # Moving the claim's expiry back is moving time on, for the claim alone.
        KitsuToken.objects.filter(user=user).update(
            refresh_claimed_until=F("refresh_claimed_until") - longest
        )
        with pytest.raises(Polled):
            tokens._refresh(user.pk, seen_token=old.access_token, forced=True, sleep=polls)

    sent = run_during_the_refresh(monkeypatch, second_worker_that_long_after)

    token = refresh_access_token(user_id=user.pk, rejected_token=old.access_token)

    assert sent == [old.refresh_token], "the second worker waited instead of refreshing"
    stored = KitsuToken.objects.get(user=user)
    assert stored.access_token == token
    assert not stored.needs_relink
    assert tokens.claim_duration() >= longest
