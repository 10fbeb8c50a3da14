"""Django admin: sync states and their actions, read-only history, links without secrets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from kitsu_sync.models import (
    Anime,
    AuthFlow,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    MappingDataset,
    MediaOverride,
    MediaServer,
    Notice,
    NotificationSettings,
    SyncOutcome,
    SyncRun,
    SyncStatus,
)

pytestmark = pytest.mark.django_db

ACCESS_TOKEN = "access-token-that-must-never-show-up-in-admin-0123456789"
REFRESH_TOKEN = "refresh-token-that-must-never-show-up-in-admin-987654321"


def linked(user: Any, **token_fields: Any) -> Any:
    """`user`, with a stored link whose tokens must never show in the admin."""
    KitsuToken.objects.create(
        user=user,
        kitsu_user_id="1001",
        kitsu_username=f"{user.username}-on-kitsu",
        access_token=ACCESS_TOKEN,
        refresh_token=REFRESH_TOKEN,
        token_expires_at=timezone.now() + timedelta(days=20),
        auth_flow=AuthFlow.PASSWORD,
        **token_fields,
    )
    return user


def test_sync_states_filter_by_status_and_search_by_username(
    admin_client: Any, make_user: Any
) -> None:
    failing = linked(make_user("failing"))
    KitsuSyncState.objects.create(user=failing, last_sync_status=SyncStatus.FAILED)
    fine = linked(make_user("fine"))
    KitsuSyncState.objects.create(user=fine, last_sync_status=SyncStatus.SUCCESS)
    url = "/admin/kitsu_sync/kitsusyncstate/"

    failed_page = admin_client.get(url, {"last_sync_status__exact": "failed"}).content.decode()
    searched_page = admin_client.get(url, {"q": "fine"}).content.decode()

    assert ">failing<" in failed_page
    assert ">fine<" not in failed_page
    assert ">fine<" in searched_page
    assert ">failing<" not in searched_page


def test_a_sync_states_errors_read_as_a_list_of_reasons(admin_client: Any, make_user: Any) -> None:
    user = linked(make_user("broken"))
    state = KitsuSyncState.objects.create(
        user=user,
        last_sync_status=SyncStatus.PARTIAL,
        errors=[
            {
                "at": "2025-01-01T00:00:00+00:00",
                "entry": "35000043",
                "anime": 70,
                "title": "Hikari <Monogatari>",
                "reason": "Kitsu refused the change: progress - is rather unreasonably high",
                "retryable": False,
            }
        ],
    )

    page = admin_client.get(f"/admin/kitsu_sync/kitsusyncstate/{state.pk}/change/")

    html = page.content.decode()
    assert "<li>Kitsu refused the change: progress - is rather unreasonably high" in html
    assert "(anime 70: Hikari &lt;Monogatari&gt;)</li>" in html
    assert '"retryable"' not in html


@pytest.mark.parametrize(("action", "full"), [("sync_now", False), ("full_resync", True)])
def test_the_sync_actions_queue_a_sync_for_each_chosen_user(
    admin_client: Any,
    make_user: Any,
    queued_tasks: list[Any],
    django_capture_on_commit_callbacks: Any,
    action: str,
    full: bool,
) -> None:
    users = [
        linked(make_user("one")),
        linked(make_user("two")),
        linked(make_user("relink"), needs_relink=True),
    ]
    states = [KitsuSyncState.objects.create(user=user) for user in users]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/kitsu_sync/kitsusyncstate/",
            {"action": action, "_selected_action": [state.pk for state in states]},
            follow=True,
        )

    assert sorted(queued_tasks) == sorted(
        [(users[0].pk, "admin", full), (users[1].pk, "admin", full)]
    )
    text = response.content.decode()
    assert "for 2 user(s)" in text
    assert "1 user(s) skipped" in text


def test_kitsu_links_are_shown_without_their_tokens(admin_client: Any, make_user: Any) -> None:
    user = linked(
        make_user("secretive"), needs_relink=True, relink_reason="Kitsu rejected the refresh"
    )
    link = KitsuToken.objects.get(user=user)

    pages = [
        admin_client.get("/admin/kitsu_sync/kitsutoken/"),
        admin_client.get(f"/admin/kitsu_sync/kitsutoken/{link.pk}/change/"),
    ]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert ACCESS_TOKEN not in html
        assert REFRESH_TOKEN not in html
        assert "access_token" not in html
        assert "refresh_token" not in html
    detail = pages[1].content.decode()
    assert "Kitsu rejected the refresh" in detail
    assert "secretive-on-kitsu" in detail
    assert admin_client.post(f"/admin/kitsu_sync/kitsutoken/{link.pk}/change/").status_code == 403


def test_sync_history_is_read_only_and_shows_conflicts(admin_client: Any, make_user: Any) -> None:
    user = linked(make_user("history"))
    run = SyncRun.objects.create(
        user=user,
        trigger="schedule",
        direction="two_way",
        outcome=SyncOutcome.SUCCESS,
        conflicts=1,
        conflict_log=[
            {
                "anime": 1,
                "title": "Cowboy Bebop",
                "field": "progress",
                "base": 5,
                "local": 9,
                "remote": 7,
                "kept": "revenge",
                "value": 9,
                "rule": "progress never goes backwards: kept the higher value",
            }
        ],
    )

    page = admin_client.get(f"/admin/kitsu_sync/syncrun/{run.pk}/change/").content.decode()

    assert "Cowboy Bebop (1): progress — Revenge 9, Kitsu 7; kept revenge" in page
    assert 'name="_save"' not in page
    assert admin_client.get("/admin/kitsu_sync/syncrun/add/").status_code == 403
    assert admin_client.post(f"/admin/kitsu_sync/syncrun/{run.pk}/delete/").status_code == 403
    assert SyncRun.objects.filter(pk=run.pk).exists()


def test_anime_are_listed_with_their_external_ids(admin_client: Any) -> None:
    Anime.objects.create(
        kitsu_id=1, title="Cowboy Bebop", mal_id=1, anilist_id=1, anidb_id=23, tvdb_id=76885
    )

    page = admin_client.get("/admin/kitsu_sync/anime/", {"q": "Bebop"}).content.decode()

    for value in ("Cowboy Bebop", ">23<", ">76885<"):
        assert value in page


def test_editing_an_entry_in_admin_counts_as_a_revenge_change(
    admin_client: Any, make_user: Any
) -> None:
    user = linked(make_user("editor"))
    anime = Anime.objects.create(kitsu_id=1, title="Cowboy Bebop", episode_count=26)
    entry = LibraryEntry.objects.create(
        user=user, anime=anime, status="watching", progress=3, kitsu_entry_id=35000001
    )
    url = f"/admin/kitsu_sync/libraryentry/{entry.pk}/change/"

    response = admin_client.post(
        url,
        {
            "user": user.pk,
            "anime": anime.pk,
            "status": "watching",
            "progress": 4,
            "score": "",
            "rewatch_count": 0,
            "notes": "",
        },
    )

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.progress == 4
    assert entry.local_updated_at is not None


MEDIA_SERVER_KEY = "media-server-key-that-must-never-show-up-in-admin"


def test_a_media_servers_key_is_written_but_never_shown_and_kept_when_left_empty(
    admin_client: Any,
) -> None:
    form = {
        "kind": "jellyfin",
        "name": "Home",
        "url": "http://jellyfin:8096",
        "api_key": MEDIA_SERVER_KEY,
        "server_user_id": "",
    }
    added = admin_client.post("/admin/kitsu_sync/mediaserver/add/", form)
    assert added.status_code == 302, added.content.decode()[-2000:]
    server = MediaServer.objects.get()
    assert server.api_key == MEDIA_SERVER_KEY
    assert server.url == "http://jellyfin:8096"  # a container's name is a host too
    refused = admin_client.post("/admin/kitsu_sync/mediaserver/add/", {**form, "url": "jellyfin"})
    assert "with http:// or https://" in refused.content.decode()

    page = admin_client.get(f"/admin/kitsu_sync/mediaserver/{server.pk}/change/")
    kept = admin_client.post(
        f"/admin/kitsu_sync/mediaserver/{server.pk}/change/", {**form, "api_key": ""}
    )

    assert MEDIA_SERVER_KEY not in page.content.decode()
    assert kept.status_code == 302
    server.refresh_from_db()
    assert server.api_key == MEDIA_SERVER_KEY
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key FROM {MediaServer._meta.db_table}")  # noqa: S608
        [(stored,)] = cursor.fetchall()
    assert MEDIA_SERVER_KEY not in stored  # encrypted at rest


def test_overrides_and_the_datasets_state_are_in_the_admin(
    admin_client: Any, make_user: Any
) -> None:
    MediaOverride.objects.create(
        user=make_user("alice"), site="tvdb", external_id="267440", season=3, kitsu_id=41982
    )
    MappingDataset.objects.create(source="fribb", records=40000, last_error="HTTP 404")

    overrides = admin_client.get("/admin/kitsu_sync/mediaoverride/").content.decode()
    datasets = admin_client.get("/admin/kitsu_sync/mappingdataset/").content.decode()

    assert "267440" in overrides
    assert "41982" in overrides
    assert "40000" in datasets
    assert "HTTP 404" in datasets
    assert admin_client.get("/admin/kitsu_sync/mappingdataset/add/").status_code == 403


def test_notices_and_notification_settings_are_shown_without_the_apprise_url(
    admin_client: Any, make_user: Any
) -> None:
    user = make_user("notified")
    settings_row = NotificationSettings.objects.create(
        user=user, apprise_url="tgram://123456:bot-secret-token/42"
    )
    notice = Notice.objects.create(
        user=user, kind="relink", message="Link again, please.", started_at=timezone.now()
    )

    pages = [
        admin_client.get("/admin/kitsu_sync/notice/"),
        admin_client.get(f"/admin/kitsu_sync/notice/{notice.pk}/change/"),
        admin_client.get("/admin/kitsu_sync/notificationsettings/"),
        admin_client.get(f"/admin/kitsu_sync/notificationsettings/{settings_row.pk}/change/"),
    ]

    assert [page.status_code for page in pages] == [200] * 4
    assert "Link again, please." in pages[1].content.decode()
    for page in pages:
        assert "bot-secret-token" not in page.content.decode()
    assert admin_client.get("/admin/kitsu_sync/notice/add/").status_code == 403
