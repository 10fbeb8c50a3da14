"""The dashboard, linking, syncing and unlinking, the list page's basics, scrobbling settings,
and what every page requires (a signed-in user, POST with CSRF for changes)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kitsu_sync.media_servers import MediaIds
from kitsu_sync.models import (
    Anime,
    ApiKey,
    KitsuOutbox,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    MediaOverride,
    MediaServer,
    SyncOutcome,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    UnmatchedItem,
    WatchStatus,
)
from kitsu_sync.services import api_keys, entries
from kitsu_sync.services.scrobble import Watch, scrobble
from tests.web_support import (
    DASHBOARD,
    LIBRARY,
    LINK,
    SYNC,
    UNLINK,
    add_entries,
    database_text,
    linked,
)

pytestmark = pytest.mark.django_db


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DASHBOARD, LINK, UNLINK, LIBRARY, "/kitsu/syncs/1/"])
def test_pages_need_a_signed_in_user(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("url", [SYNC])
def test_state_changes_refuse_get(client, signed_in, url):
    assert client.get(url).status_code == 405


def test_state_changes_need_a_csrf_token(make_user):
    client = Client(enforce_csrf_checks=True)
    user = make_user()
    linked(user)
    client.force_login(user)
    assert client.post(SYNC).status_code == 403
    assert client.post(UNLINK, {"library": "delete"}).status_code == 403
    assert client.post(LINK, {"login": "a", "password": "b"}).status_code == 403
    assert KitsuToken.objects.filter(user=user).exists()


# --- dashboard --------------------------------------------------------------------------------


def test_the_dashboard_offers_the_password_form_with_the_password_flow(client, signed_in, settings):
    settings.KITSU_AUTH_FLOW = "password"
    body = client.get(DASHBOARD).content.decode()
    assert f'id="link-kitsu" href="{LINK}"' in body


def test_the_dashboard_posts_to_the_provider_with_the_code_flow(client, signed_in, code_flow):
    body = client.get(DASHBOARD).content.decode()
    assert 'action="/accounts/kitsu/login/?process=connect&amp;next=%2F"' in body
    assert 'method="post"' in body
    assert "csrfmiddlewaretoken" in body


def test_the_dashboard_shows_the_link_and_the_last_sync(client, signed_in):
    link = linked(signed_in)
    add_entries(signed_in, 3)
    finished = timezone.now() - timedelta(hours=2)
    KitsuSyncState.objects.create(
        user=signed_in,
        last_sync_at=finished,
        last_sync_status=SyncStatus.PARTIAL,
        entries_synced=42,
        errors=[{"title": "Naruto", "reason": "Kitsu refused progress 30: it has 26 episodes."}],
    )
    run = SyncRun.objects.create(
        user=signed_in,
        trigger=SyncTrigger.MANUAL,
        direction="import_only",
        outcome=SyncOutcome.PARTIAL,
        created=40,
        failed=1,
    )

    body = client.get(DASHBOARD).content.decode()

    assert link.kitsu_display_name in body
    assert link.kitsu_avatar_url in body
    assert "Finished with errors" in body
    assert '<dd id="entries-synced">42</dd>' in body
    assert "3 anime" in body
    assert "<strong>Naruto</strong>: Kitsu refused progress 30: it has 26 episodes." in body
    assert reverse("kitsu_sync:sync_run", args=[run.pk]) in body
    assert "Sync now" in body
    assert "<progress" not in body
    assert 'http-equiv="refresh"' not in body
    assert link.access_token not in body


def test_a_running_sync_shows_a_progress_bar_and_refreshes(client, signed_in):
    linked(signed_in)
    KitsuSyncState.objects.create(
        user=signed_in, last_sync_status=SyncStatus.RUNNING, progress_done=30, progress_total=120
    )

    body = client.get(DASHBOARD).content.decode()

    assert '<progress id="sync-progress" max="120" value="30">25%</progress>' in body
    assert "30 of 120 entries" in body
    assert '<meta http-equiv="refresh" content="5">' in body


def test_a_link_that_needs_relink_shows_the_banner_and_no_sync_button(client, signed_in):
    link = linked(signed_in)
    KitsuToken.objects.filter(pk=link.pk).update(
        needs_relink=True, relink_reason="Kitsu rejected the refresh token. Link Kitsu again."
    )

    body = client.get(DASHBOARD).content.decode()

    assert 'id="relink-banner"' in body
    assert "Kitsu rejected the refresh token. Link Kitsu again." in body
    assert "Link Kitsu again" in body
    assert "Sync now" not in body


# --- password link ----------------------------------------------------------------------------


def test_the_password_form_links_and_requests_the_first_sync(
    client, signed_in, kitsu, sync_requests
):
    demo = kitsu.credentials(1)

    response = client.post(LINK, {"login": demo.login, "password": demo.password}, follow=True)

    assert response.redirect_chain == [(DASHBOARD, 302)]
    body = response.content.decode()
    assert f"Linked to Kitsu as {demo.name}" in body
    assert KitsuToken.objects.get(user=signed_in).kitsu_user_id == demo.user_id
    assert sync_requests.calls[0]["trigger"] == "link"


def test_after_linking_the_dashboard_shows_the_first_sync_queued(
    client, signed_in, kitsu, django_capture_on_commit_callbacks
):
    demo = kitsu.credentials(1)

    # The real sync engine: the link queues the first sync once the transaction commits.
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(LINK, {"login": demo.login, "password": demo.password})

    assert len(callbacks) == 1
    assert KitsuSyncState.objects.get(user=signed_in).last_sync_status == SyncStatus.QUEUED
    body = client.get(DASHBOARD).content.decode()
    assert "Queued…" in body
    assert '<progress id="sync-progress">' in body
    assert '<meta http-equiv="refresh" content="5">' in body


def test_wrong_credentials_explain_what_kitsu_accepts(client, signed_in, kitsu):
    demo = kitsu.credentials(1)

    response = client.post(LINK, {"login": demo.name, "password": demo.password})

    assert response.status_code == 400
    body = response.content.decode()
    assert "use your email or profile URL name" in body
    assert "not your display name" in body
    assert f'value="{demo.name}"' in body  # the login is kept for correcting
    assert demo.password not in body
    assert not KitsuToken.objects.exists()


def test_unreachable_kitsu_says_to_try_later(kitsu_at, client, signed_in, refused_url):
    url = refused_url
    kitsu_at(api_url=f"{url}/api/edge", oauth_url=f"{url}/api/oauth")

    response = client.post(LINK, {"login": "demo@example.test", "password": "pw"})

    assert response.status_code == 400
    assert "Kitsu could not be reached" in response.content.decode()


def test_kitsus_login_throttle_says_to_wait(
    kitsu_at, client, signed_in, sandbox_factory, fake_clock
):
    throttled = sandbox_factory(login_throttle_limit=0, clock=fake_clock)
    throttled.set_faults([{"kind": "rate_limit", "path": "/api/oauth/token"}])
    kitsu_at(api_url=throttled.api_url, oauth_url=throttled.oauth_url)

    response = client.post(LINK, {"login": "demo@example.test", "password": "demo-password"})

    assert response.status_code == 400
    assert "Wait a minute, then try again" in response.content.decode()


@pytest.mark.parametrize(
    ("login", "password", "message"),
    [
        ("", "pw", "Enter the email or profile URL name"),
        ("demo@example.test", "", "Enter your Kitsu password"),
        ("demo@example.test", "x" * 2000, "longer than 1 KB"),
        ("demo\x1b@example.test", "pw", "control characters"),
    ],
)
def test_bad_input_is_refused_without_calling_kitsu(
    client, signed_in, kitsu, login, password, message
):
    response = client.post(LINK, {"login": login, "password": password})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert kitsu.stats()["total"] == 0


def test_the_password_is_in_no_row_log_record_or_response(
    client, signed_in, kitsu, sync_requests, caplog
):
    caplog.set_level(logging.DEBUG)
    demo = kitsu.credentials(2)  # the one whose password has & = + % and spaces
    wrong = "Wr0ng-but-still-secret!"
    bodies = [
        client.post(LINK, {"login": demo.login, "password": wrong}).content.decode(),
        client.post(
            LINK, {"login": demo.login, "password": demo.password}, follow=True
        ).content.decode(),
        client.get(DASHBOARD).content.decode(),
    ]
    assert KitsuToken.objects.filter(user=signed_in).exists()

    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    stored = database_text()
    cookies = repr({name: morsel.value for name, morsel in client.cookies.items()})
    # The search does see what is stored: the Kitsu login is kept (in allauth's extra_data).
    assert demo.email in stored
    for secret in (demo.password, wrong):
        assert secret not in stored
        assert secret not in logged
        assert secret not in cookies
        for body in bodies:
            assert secret not in body
    assert "Linked to Kitsu as" in bodies[1]


# --- sync now and unlink ----------------------------------------------------------------------


def test_sync_now_asks_for_a_manual_sync(client, signed_in, sync_requests):
    linked(signed_in)

    response = client.post(SYNC, follow=True)

    assert sync_requests.calls == [{"user_id": signed_in.pk, "trigger": "manual", "full": False}]
    assert "Sync started" in response.content.decode()


def test_sync_now_says_when_a_sync_is_already_queued(client, signed_in, sync_requests):
    linked(signed_in)
    sync_requests.answer = False

    response = client.post(SYNC, follow=True)

    assert "already queued or running" in response.content.decode()


def test_sync_now_without_a_link_says_to_link_first(client, signed_in, sync_requests):
    response = client.post(SYNC, follow=True)
    assert "Link your Kitsu account first" in response.content.decode()
    assert sync_requests.calls == []


def test_unlink_asks_for_confirmation_first(client, signed_in):
    linked(signed_in)
    add_entries(signed_in, 2)

    body = client.get(UNLINK).content.decode()

    assert "Keep it in Revenge" in body
    assert "Delete it from Revenge" in body
    assert "(2 anime)" in body
    assert KitsuToken.objects.filter(user=signed_in).exists()


@pytest.mark.parametrize(("choice", "left"), [("keep", 2), ("delete", 0)])
def test_unlink_removes_the_link_and_keeps_or_deletes_the_list(client, signed_in, choice, left):
    linked(signed_in)
    add_entries(signed_in, 2)

    response = client.post(UNLINK, {"library": choice}, follow=True)

    body = response.content.decode()
    assert "Kitsu is unlinked" in body
    # The test settings point Kitsu at a closed port: the revocation could not be sent.
    assert "could not be reached to cancel the access" in body
    assert not KitsuToken.objects.filter(user=signed_in).exists()
    assert not SocialAccount.objects.filter(user=signed_in).exists()
    assert LibraryEntry.objects.filter(user=signed_in).count() == left


def test_unlink_without_a_choice_is_refused(client, signed_in):
    linked(signed_in)
    response = client.post(UNLINK, {})
    assert response.status_code == 400
    assert "Choose whether to keep or delete" in response.content.decode()
    assert KitsuToken.objects.filter(user=signed_in).exists()


# --- list and history -------------------------------------------------------------------------


def test_the_list_shows_only_the_users_own_entries(client, signed_in, make_user):
    add_entries(signed_in, 2)
    stranger = make_user()
    anime = Anime.objects.create(kitsu_id=999, title="Someone Else's Show")
    LibraryEntry.objects.create(user=stranger, anime=anime, status=WatchStatus.COMPLETED)

    body = client.get(LIBRARY).content.decode()

    assert "Anime 000" in body
    assert "Anime 001" in body
    assert "Someone Else" not in body
    assert 'src="https://media.example/posters/0.jpg"' in body
    assert "3 / 12" in body
    assert '<td data-label="Score">8</td>' in body  # 80/100: 8 on Kitsu's 10-point scale
    assert "Watching" in body


def test_the_list_filters_by_status(client, signed_in):
    add_entries(signed_in, 2)
    anime = Anime.objects.create(kitsu_id=500, title="Finished Show")
    LibraryEntry.objects.create(user=signed_in, anime=anime, status=WatchStatus.COMPLETED)

    body = client.get(LIBRARY, {"status": "completed"}).content.decode()

    assert "Finished Show" in body
    assert "Anime 000" not in body
    assert "1 anime match." in body


def test_an_unknown_status_filter_shows_everything(client, signed_in):
    add_entries(signed_in, 2)
    body = client.get(LIBRARY, {"status": "watching'; DROP"}).content.decode()
    assert "Anime 001" in body


def test_the_list_is_paginated(client, signed_in):
    add_entries(signed_in, 51)

    first = client.get(LIBRARY).content.decode()
    second = client.get(LIBRARY, {"page": 2}).content.decode()

    assert "Page 1 of 2" in first
    assert "Anime 049" in first
    assert "Anime 050" not in first
    assert "Anime 050" in second


def test_a_sync_run_page_shows_its_errors(client, signed_in):
    run = SyncRun.objects.create(
        user=signed_in,
        trigger=SyncTrigger.LINK,
        direction="import_only",
        outcome=SyncOutcome.FAILED,
        errors=[{"reason": "Kitsu could not be reached."}],
    )
    body = client.get(reverse("kitsu_sync:sync_run", args=[run.pk])).content.decode()
    assert "Kitsu could not be reached." in body
    assert "First sync after linking" in body


def test_another_users_sync_run_is_not_found(client, signed_in, make_user):
    run = SyncRun.objects.create(
        user=make_user(), trigger=SyncTrigger.MANUAL, direction="import_only"
    )
    assert client.get(reverse("kitsu_sync:sync_run", args=[run.pk])).status_code == 404


# --- scrobbling: keys, media servers, unmatched items ----------------------------------------


def test_a_new_key_is_shown_once_and_only_its_hash_is_kept(client: Client, signed_in: Any) -> None:
    response = client.post("/keys/", {"name": "Jellyfin at home", "server_users": "alice, bob"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["new_key"]
    assert key.startswith("rvk_")
    assert key in response.content.decode()
    row = ApiKey.objects.get(user=signed_in)
    assert (row.name, row.server_users) == ("Jellyfin at home", ["alice", "bob"])
    assert key not in database_text()
    # The dashboard never shows it again.
    assert key not in client.get(DASHBOARD).content.decode()
    assert f"rvk_{row.prefix}_" in client.get(DASHBOARD).content.decode()


def test_a_key_without_a_name_is_refused_with_the_reason(client: Client, signed_in: Any) -> None:
    response = client.post("/keys/", {"name": " "})

    assert response.status_code == 400
    assert "Give the key a name" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_only_the_owner_revokes_a_key(client: Client, signed_in: Any, make_user: Any) -> None:
    theirs, _ = api_keys.create_key(user=make_user(), name="theirs")
    mine, _ = api_keys.create_key(user=signed_in, name="mine")

    assert client.post(f"/keys/{theirs.pk}/revoke/").status_code == 404
    response = client.post(f"/keys/{mine.pk}/revoke/", follow=True)

    assert "revoked" in response.content.decode()
    assert ApiKey.objects.get(pk=theirs.pk).revoked_at is None
    assert ApiKey.objects.get(pk=mine.pk).revoked_at is not None


def test_a_media_server_is_added_with_its_key_encrypted(client: Client, signed_in: Any) -> None:
    response = client.post(
        "/media-servers/",
        {
            "kind": "jellyfin",
            "name": "Home",
            "url": "http://192.168.1.20:8096",
            "api_key": "jellyfin-api-key-123",
        },
        follow=True,
    )

    assert response.status_code == 200
    server = MediaServer.objects.get(user=signed_in)
    assert server.api_key == "jellyfin-api-key-123"
    assert "jellyfin-api-key-123" not in database_text()
    assert "Home" in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://jellyfin:8096/internal/action?confirm=1",
        "http://jellyfin:8096/#",
        "http://admin:secret@jellyfin:8096",
    ],
)
def test_a_media_server_address_is_a_plain_http_base_address(
    client: Client, signed_in: Any, url: str
) -> None:
    response = client.post(
        "/media-servers/", {"kind": "plex", "name": "Plex", "url": url, "api_key": "t"}
    )

    assert response.status_code == 400
    assert not MediaServer.objects.exists()


@pytest.fixture
def waiting_item(signed_in: Any, datasets: None, kitsu: Any) -> UnmatchedItem:
    scrobble(
        user_id=signed_in.pk,
        watch=Watch(MediaIds(tvdb=999001), 3, 1, "Obscure Show", "jellyfin", {}),
    )
    return UnmatchedItem.objects.get(user=signed_in)


def test_the_dashboard_lists_unmatched_items_with_their_waiting_episodes(
    client: Client, waiting_item: UnmatchedItem
) -> None:
    page = client.get(DASHBOARD).content.decode()

    assert "Obscure Show" in page
    assert "episodes waiting:" in page
    assert f"/unmatched/{waiting_item.pk}/match/" in page


def test_matching_an_item_records_its_episodes_and_is_remembered(
    client: Client, signed_in: Any, waiting_item: UnmatchedItem
) -> None:
    response = client.post(
        f"/unmatched/{waiting_item.pk}/match/",
        {"kitsu_id": "1", "episode_offset": "0", "every_season": "on"},
        follow=True,
    )

    assert "1 waiting episode(s) were recorded now" in response.content.decode()
    assert LibraryEntry.objects.get(user=signed_in, anime__kitsu_id=1).progress == 3
    assert MediaOverride.objects.get(user=signed_in).season is None
    assert "Obscure Show" not in client.get(DASHBOARD).content.decode()


def test_a_match_without_a_kitsu_id_says_what_is_missing(
    client: Client, waiting_item: UnmatchedItem
) -> None:
    response = client.post(f"/unmatched/{waiting_item.pk}/match/", {"kitsu_id": "x"}, follow=True)

    assert "Give the Kitsu anime" in response.content.decode()
    assert not MediaOverride.objects.exists()


def test_another_users_item_cannot_be_matched_or_ignored(
    client: Client, waiting_item: UnmatchedItem, make_user: Any
) -> None:
    client.force_login(make_user())

    assert client.post(f"/unmatched/{waiting_item.pk}/match/", {"kitsu_id": "1"}).status_code == 404
    assert client.post(f"/unmatched/{waiting_item.pk}/ignore/").status_code == 404
    assert not MediaOverride.objects.exists()


def test_searching_kitsu_for_an_item_offers_to_match_each_result(
    client: Client, waiting_item: UnmatchedItem, kitsu: Any
) -> None:
    record = next(a for a in kitsu.store.anime if not a.nsfw and a.canonical_title)

    page = client.get(
        DASHBOARD, {"find": waiting_item.pk, "q": record.canonical_title}
    ).content.decode()

    assert f'name="kitsu_id" value="{record.id}"' in page
    assert "This one" in page


def test_ignoring_an_item_clears_it_and_forgetting_the_choice_brings_events_back(
    client: Client, signed_in: Any, waiting_item: UnmatchedItem
) -> None:
    client.post(f"/unmatched/{waiting_item.pk}/ignore/")
    choice = MediaOverride.objects.get(user=signed_in)
    assert choice.ignore
    assert "Obscure Show" not in client.get(DASHBOARD).content.decode()

    client.post(f"/overrides/{choice.pk}/delete/")

    assert not MediaOverride.objects.exists()


def test_the_list_page_says_where_each_entry_stands_with_kitsu(
    client: Client, signed_in: Any, settings: Any
) -> None:
    add_entries(signed_in, 2)
    first = LibraryEntry.objects.filter(user=signed_in).order_by("anime__title").first()
    entries.update_entry(
        user_id=signed_in.pk, anime_kitsu_id=first.anime.kitsu_id, changes={"progress": 1}
    )

    page = client.get(LIBRARY).content.decode()

    assert "import only: kept here" in page
    assert "as on Kitsu" in page


def test_the_dashboard_says_when_changes_stay_in_revenge(
    client: Client, signed_in: Any, settings: Any
) -> None:
    assert 'id="import-only-note"' in client.get(DASHBOARD).content.decode()
    settings.KITSU_SYNC_DIRECTION = "two_way"
    assert 'id="import-only-note"' not in client.get(DASHBOARD).content.decode()


def test_a_change_kitsu_refused_can_be_sent_again_from_the_list(
    client: Client, signed_in: Any, deliveries: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    add_entries(signed_in, 1)
    entry = LibraryEntry.objects.get(user=signed_in)
    KitsuOutbox.objects.create(
        user=signed_in,
        anime=entry.anime,
        entry=entry,
        action="write",
        queued_at=timezone.now(),
        next_attempt_at=timezone.now(),
        failed=True,
        last_error="progress is unreasonably high",
    )
    assert "Send again" in client.get(LIBRARY).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/library/{entry.anime.kitsu_id}/resend/", follow=True)

    assert "will be sent to Kitsu again" in response.content.decode()
    assert not KitsuOutbox.objects.get().failed
    assert deliveries == [(signed_in.pk,)]
