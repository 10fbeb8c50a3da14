from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from kitsu_sync import encryption
from kitsu_sync.encryption import (
    TokenDecryptionError,
    decrypt_token,
    encrypt_token,
    parse_keys,
    rotate_ciphertext,
)


def test_it_round_trips_a_token():
    ciphertext = encrypt_token("secret-access-token")
    assert ciphertext != "secret-access-token"
    assert "secret-access-token" not in ciphertext
    assert decrypt_token(ciphertext) == "secret-access-token"


def test_old_key_still_decrypts_after_a_new_key_is_put_first(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.KITSU_TOKEN_KEY = old
    ciphertext = encrypt_token("tok")
    settings.KITSU_TOKEN_KEY = f"{new},{old}"
    assert decrypt_token(ciphertext) == "tok"
    rotated = rotate_ciphertext(ciphertext)
    settings.KITSU_TOKEN_KEY = new
    assert decrypt_token(rotated) == "tok"
    with pytest.raises(TokenDecryptionError):
        decrypt_token(ciphertext)


def test_a_lost_key_gives_an_actionable_error_without_the_ciphertext(settings):
    ciphertext = encrypt_token("tok")
    settings.KITSU_TOKEN_KEY = Fernet.generate_key().decode()
    with pytest.raises(TokenDecryptionError, match="link Kitsu again") as info:
        decrypt_token(ciphertext)
    assert ciphertext not in str(info.value)


@pytest.mark.parametrize("value", ["", " , ", "not-a-fernet-key"])
def test_missing_or_malformed_keys_fail_with_how_to_generate_one(value):
    with pytest.raises(ImproperlyConfigured, match="Fernet"):
        parse_keys(value)


@pytest.mark.django_db
def test_tokens_are_ciphertext_in_the_raw_table(make_user):
    from datetime import UTC, datetime

    from kitsu_sync.models import KitsuToken

    user = make_user("alice")
    KitsuToken.objects.create(
        user=user,
        kitsu_user_id="1001",
        access_token="plain-access",
        refresh_token="plain-refresh",
        token_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        auth_flow="password",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM user_kitsu_tokens")
        access, refresh = cursor.fetchone()
    assert "plain-access" not in access
    assert "plain-refresh" not in refresh
    stored = KitsuToken.objects.get(user=user)
    assert (stored.access_token, stored.refresh_token) == ("plain-access", "plain-refresh")
    assert "plain" not in repr(stored)
    assert "plain" not in str(stored)


def test_cipher_is_cached_per_key_value(settings):
    assert encryption.token_cipher() is encryption.token_cipher()
