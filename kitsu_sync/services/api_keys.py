"""API keys: what a script or a media server's webhook proves it acts for a user with.

A key is `rvk_<prefix>_<secret>` (a 12-character public prefix, 43 characters of secret) and
is shown once; only its SHA-256 is stored. A key holds 32 random bytes, so a single SHA-256
is as hard to reverse as a slow password hash while costing microseconds per request:
Django's password hashers are built to be slow for guessable passwords (docs/api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from kitsu_sync.models import ApiKey

KEY_SHAPE = re.compile(r"rvk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# last_used_at is written at most this often per key (not on every webhook).
USE_STAMP_EVERY = timedelta(minutes=5)
MAX_NAME = 100


class ApiKeyError(ValueError):
    """A key cannot be made as asked; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _server_users(names: Iterable[str]) -> list[str]:
    """The names, trimmed, each once whatever its case (the first spelling kept)."""
    kept: dict[str, str] = {}
    for name in names:
        kept.setdefault(name.strip().lower(), name.strip())
    kept.pop("", None)
    return sorted(kept.values(), key=str.lower)


def create_key(
    *, user: AbstractBaseUser, name: str, server_users: Iterable[str] = ()
) -> tuple[ApiKey, str]:
    """A new key for `user`: the stored row, and the key itself (shown once, never again)."""
    name = name.strip()
    if not name:
        raise ApiKeyError("Give the key a name, such as the server or script that will use it.")
    if len(name) > MAX_NAME:
        raise ApiKeyError(f"A key's name has at most {MAX_NAME} characters.")
    prefix = secrets.token_hex(6)
    key = f"rvk_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        hashed=_digest(key),
        server_users=_server_users(server_users),
    )
    return row, key


def authenticate(key: str) -> ApiKey | None:
    """The live key this is (with its user), or None: unknown, revoked, or its user inactive."""
    shape = KEY_SHAPE.fullmatch(key.strip())
    if shape is None:
        return None
    row = (
        ApiKey.objects.filter(prefix=shape[1], revoked_at__isnull=True)
        .select_related("user")
        .first()
    )
    if row is None or not hmac.compare_digest(row.hashed, _digest(key.strip())):
        return None
    if not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > USE_STAMP_EVERY:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


def acts_for(key: ApiKey, server_user: str) -> bool:
    """Whether the key may act for this media-server user (any, when it names none)."""
    if not key.server_users:
        return True
    return server_user.strip().lower() in {name.lower() for name in key.server_users}


def revoke(*, user: AbstractBaseUser, key_id: int) -> bool:
    """Revoke one of the user's own keys; False when it is not theirs or already revoked."""
    return bool(
        ApiKey.objects.filter(pk=key_id, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def live_keys(*, user: AbstractBaseUser) -> list[ApiKey]:
    return list(ApiKey.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at"))
