"""The dashboard's notices block and its notification settings form (the Apprise URL)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from kitsu_sync.models import NoticeKind, NotificationSettings
from kitsu_sync.services import notifications
from kitsu_sync.services.tokens import mark_needs_relink
from tests.web_support import DASHBOARD, linked

pytestmark = pytest.mark.django_db

SECRET_URL = "tgram://123456789:the-bot-token-is-a-secret/987654"


def test_open_notices_show_on_the_dashboard_and_ended_ones_do_not(client, signed_in):
    notifications.open_notice(
        user_id=signed_in.pk,
        kind=NoticeKind.SYNC_FAILING,
        message="Your last 6 Kitsu syncs failed. The latest said: Kitsu failed with HTTP 503.",
    )
    notifications.open_notice(user_id=signed_in.pk, kind=NoticeKind.UNMATCHED, message="Gone.")
    notifications.close_notices(user_id=signed_in.pk, kind=NoticeKind.UNMATCHED)

    body = client.get(DASHBOARD).content.decode()

    assert 'id="notices"' in body
    assert "Syncs keep failing" in body
    assert "Your last 6 Kitsu syncs failed" in body
    assert "Gone." not in body


def test_without_notices_there_is_no_notices_block(client, signed_in):
    assert 'id="notices"' not in client.get(DASHBOARD).content.decode()


def test_the_relink_notice_is_the_banner_not_a_second_block(client, signed_in):
    linked(signed_in)
    mark_needs_relink(user_id=signed_in.pk, reason="Kitsu rejected the refresh token.")

    body = client.get(DASHBOARD).content.decode()

    assert 'id="relink-banner"' in body
    assert 'id="notices"' not in body
    assert notifications.open_notices(user_id=signed_in.pk)[0].kind == NoticeKind.RELINK


def test_saving_an_apprise_url_stores_it_and_never_shows_it_back(client: Client, signed_in: Any):
    response = client.post(DASHBOARD, {"apprise_url": SECRET_URL})

    assert response.status_code == 302
    assert response["Location"].endswith("#notifications")
    assert notifications.user_apprise_url(user_id=signed_in.pk) == SECRET_URL
    body = client.get(DASHBOARD).content.decode()
    assert "Sent to your Apprise URL (tgram://…)" in body
    assert "the-bot-token-is-a-secret" not in body


def test_an_url_apprise_does_not_know_is_refused_with_the_reason(client, signed_in):
    response = client.post(DASHBOARD, {"apprise_url": "https://example.org/not-apprise"})

    assert response.status_code == 400
    assert "Apprise does not recognise this URL" in response.content.decode()
    assert not NotificationSettings.objects.filter(user=signed_in).exists()


def test_an_url_naming_this_servers_network_is_refused_by_default(client, signed_in, settings):
    settings.APPRISE_ALLOW_LOCAL_TARGETS = False

    response = client.post(DASHBOARD, {"apprise_url": "json://127.0.0.1:6379/"})

    assert response.status_code == 400
    assert "local or private address" in response.content.decode()
    assert notifications.user_apprise_url(user_id=signed_in.pk) == ""


def test_dashboard_only_removes_the_url(client, signed_in):
    notifications.save_apprise_url(user_id=signed_in.pk, url=SECRET_URL)

    response = client.post(DASHBOARD, {"remove": "on"})

    assert response.status_code == 302
    assert notifications.user_apprise_url(user_id=signed_in.pk) == ""
    assert "Shown here only." in client.get(DASHBOARD).content.decode()


def test_the_operators_channel_is_named_when_the_user_has_none(client, signed_in, settings):
    settings.APPRISE_DEFAULT_URL = "mailto://admin:secret@example.org"

    body = client.get(DASHBOARD).content.decode()

    assert "Sent to the administrator's notification channel" in body
    assert "admin:secret" not in body


def test_saving_the_settings_needs_a_csrf_token(signed_in):
    client = Client(enforce_csrf_checks=True)
    client.force_login(signed_in)

    assert client.post(DASHBOARD, {"apprise_url": SECRET_URL}).status_code == 403
