from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from kitsu_sync.encryption import decrypt_token
from kitsu_sync.models import KitsuToken, MediaServer, NotificationSettings

pytestmark = pytest.mark.django_db


def link_alice(make_user, kitsu):
    user = make_user("alice")
    demo = kitsu.credentials(1)
    call_command(
        "kitsu_link",
        "alice",
        "--kitsu-login",
        demo.login,
        stdin=io.StringIO(f"{demo.password}\n"),
        stdout=io.StringIO(),
    )
    return user


def test_rotating_the_key_re_encrypts_every_token(make_user, kitsu, sync_requests, settings):
    user = link_alice(make_user, kitsu)
    plaintext = KitsuToken.objects.get(user=user).access_token
    old_key = settings.KITSU_TOKEN_KEY
    new_key = Fernet.generate_key().decode()
    settings.KITSU_TOKEN_KEY = f"{new_key},{old_key}"

    out = io.StringIO()
    call_command("kitsu_rotate_token_key", stdout=out)

    assert "Re-encrypted the tokens of 1 Kitsu link(s)." in out.getvalue()
    settings.KITSU_TOKEN_KEY = new_key  # the old key is gone now
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM user_kitsu_tokens WHERE user_id = %s", [user.pk])
        (raw,) = cursor.fetchone()
    assert decrypt_token(raw) == plaintext
    assert KitsuToken.objects.get(user=user).access_token == plaintext


def test_rotation_marks_links_no_key_can_read(make_user, kitsu, sync_requests, settings):
    user = link_alice(make_user, kitsu)
    settings.KITSU_TOKEN_KEY = Fernet.generate_key().decode()

    with pytest.raises(CommandError, match="marked for re-link"):
        call_command("kitsu_rotate_token_key", stdout=io.StringIO())

    assert KitsuToken.objects.filter(user=user, needs_relink=True).exists()


def test_rotating_the_key_re_encrypts_media_server_api_keys_too(settings):
    MediaServer.objects.create(kind="plex", name="Home", url="http://plex:32400", api_key="p-token")
    old_key = settings.KITSU_TOKEN_KEY
    new_key = Fernet.generate_key().decode()
    settings.KITSU_TOKEN_KEY = f"{new_key},{old_key}"

    out = io.StringIO()
    call_command("kitsu_rotate_token_key", stdout=out)

    assert "Re-encrypted the API keys of 1 media server(s)." in out.getvalue()
    settings.KITSU_TOKEN_KEY = new_key
    assert MediaServer.objects.get().api_key == "p-token"


def test_rotating_the_key_re_encrypts_users_apprise_urls_too(settings, make_user):
    url = "tgram://123456:secret-bot-token/987654"
    NotificationSettings.objects.create(user=make_user(), apprise_url=url)
    old_key = settings.KITSU_TOKEN_KEY
    settings.KITSU_TOKEN_KEY = f"{Fernet.generate_key().decode()},{old_key}"
    new_key = settings.KITSU_TOKEN_KEY.split(",")[0]

    out = io.StringIO()
    call_command("kitsu_rotate_token_key", stdout=out)

    assert "Re-encrypted the Apprise URLs of 1 user(s)." in out.getvalue()
    settings.KITSU_TOKEN_KEY = new_key  # the old key is gone now
    assert NotificationSettings.objects.get().apprise_url == url
