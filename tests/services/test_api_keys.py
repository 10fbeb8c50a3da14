"""API keys: shown once, stored as a hash, acting for their user only until revoked."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from kitsu_sync.models import ApiKey
from kitsu_sync.services import api_keys

pytestmark = pytest.mark.django_db


def test_a_new_key_is_returned_once_and_only_its_hash_is_stored(
    make_user: Callable[..., Any],
) -> None:
    user = make_user()

    row, key = api_keys.create_key(user=user, name="  Living-room Jellyfin ")

    assert api_keys.KEY_SHAPE.fullmatch(key)
    assert key.startswith(f"rvk_{row.prefix}_")
    stored = ApiKey.objects.get(pk=row.pk)
    assert stored.name == "Living-room Jellyfin"
    assert stored.hashed == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(value) for value in vars(stored).values()}
    assert api_keys.authenticate(key) == row


def test_keys_are_unique(make_user: Callable[..., Any]) -> None:
    user = make_user()

    keys = {api_keys.create_key(user=user, name=f"key {n}")[1] for n in range(20)}

    assert len(keys) == 20


@pytest.mark.parametrize(
    "damage",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # the secret, one letter off
        lambda key: key.replace("rvk_", "rvx_"),
        lambda key: key[:20],
        lambda key: "",
        lambda key: "Bearer " + key,
    ],
)
def test_a_damaged_key_authenticates_nobody(
    make_user: Callable[..., Any], damage: Callable[[str], str]
) -> None:
    _, key = api_keys.create_key(user=make_user(), name="script")

    assert api_keys.authenticate(damage(key)) is None


def test_a_revoked_key_no_longer_works_and_only_its_owner_can_revoke_it(
    make_user: Callable[..., Any],
) -> None:
    owner, stranger = make_user(), make_user()
    row, key = api_keys.create_key(user=owner, name="script")

    assert not api_keys.revoke(user=stranger, key_id=row.pk)
    assert api_keys.authenticate(key) == row
    assert api_keys.revoke(user=owner, key_id=row.pk)
    assert not api_keys.revoke(user=owner, key_id=row.pk)

    assert api_keys.authenticate(key) is None
    assert api_keys.live_keys(user=owner) == []


def test_the_key_of_a_deactivated_user_works_no_more(make_user: Callable[..., Any]) -> None:
    user = make_user()
    _, key = api_keys.create_key(user=user, name="script")
    user.is_active = False
    user.save()

    assert api_keys.authenticate(key) is None


def test_use_is_stamped_at_most_every_few_minutes(make_user: Callable[..., Any]) -> None:
    row, key = api_keys.create_key(user=make_user(), name="script")

    api_keys.authenticate(key)
    first = ApiKey.objects.get(pk=row.pk).last_used_at
    api_keys.authenticate(key)

    assert first is not None
    assert ApiKey.objects.get(pk=row.pk).last_used_at == first
    long_ago = timezone.now() - api_keys.USE_STAMP_EVERY - timedelta(seconds=1)
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=long_ago)
    api_keys.authenticate(key)
    assert ApiKey.objects.get(pk=row.pk).last_used_at > long_ago


@pytest.mark.parametrize(
    ("name", "message"), [("   ", "Give the key a name"), ("x" * 101, "at most 100")]
)
def test_a_key_needs_a_short_name(make_user: Callable[..., Any], name: str, message: str) -> None:
    with pytest.raises(api_keys.ApiKeyError, match=message):
        api_keys.create_key(user=make_user(), name=name)
    assert not ApiKey.objects.exists()


def test_a_key_for_named_server_users_acts_only_for_them(make_user: Callable[..., Any]) -> None:
    row, _ = api_keys.create_key(
        user=make_user(), name="family Plex", server_users=[" Alice ", "", "bob", "alice"]
    )
    anyone, _ = api_keys.create_key(user=make_user(), name="my Plex")

    assert row.server_users == ["Alice", "bob"]
    assert api_keys.acts_for(row, "alice")
    assert api_keys.acts_for(row, "BOB ")
    assert not api_keys.acts_for(row, "carol")
    assert not api_keys.acts_for(row, "")
    assert api_keys.acts_for(anyone, "carol")
