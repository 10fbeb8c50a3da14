"""Encryption of Kitsu tokens at rest.

KITSU_TOKEN_KEY holds one or more Fernet keys, comma-separated. The first encrypts; every key
decrypts, so a key is rotated by putting the new one first, running
`manage.py kitsu_rotate_token_key`, then dropping the old one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

KEY_HELP = (
    'Generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class TokenDecryptionError(Exception):
    """A stored token cannot be decrypted with any configured key (key lost or changed)."""


def parse_keys(value: str) -> list[Fernet]:
    keys = [part.strip() for part in (value or "").split(",") if part.strip()]
    if not keys:
        raise ImproperlyConfigured(f"KITSU_TOKEN_KEY is not set. {KEY_HELP}")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"KITSU_TOKEN_KEY key #{position} is not a Fernet key (32 url-safe base64 "
                f"bytes). {KEY_HELP}"
            ) from exc
    return fernets


@cache
def _cipher_for(value: str) -> MultiFernet:
    return MultiFernet(parse_keys(value))


def token_cipher() -> MultiFernet:
    return _cipher_for(settings.KITSU_TOKEN_KEY)


def encrypt_token(plaintext: str) -> str:
    return token_cipher().encrypt(plaintext.encode()).decode()


def decrypt_token(ciphertext: str) -> str:
    try:
        return token_cipher().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "A stored Kitsu token cannot be decrypted with KITSU_TOKEN_KEY; was the key changed "
            "without keeping the old one? The user must link Kitsu again."
        ) from None


def rotate_ciphertext(ciphertext: str) -> str:
    """Re-encrypt with the first key (MultiFernet.rotate keeps the original timestamp)."""
    return token_cipher().rotate(ciphertext.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column stored as Fernet ciphertext, plaintext in Python."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt_token(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_token(value)
