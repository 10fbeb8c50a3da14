"""Fixtures of the HTTP API's tests: a user with an API key, and a client that sends it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from kitsu_sync.services import api_keys
from tests.api.support import KeyedClient


@pytest.fixture
def keyed(make_user: Callable[..., Any]) -> Callable[..., KeyedClient]:
    """A client for a new user (or `user`) with a fresh API key."""

    def make(user: Any = None, *, server_users: tuple[str, ...] = ()) -> KeyedClient:
        owner = user or make_user()
        _, key = api_keys.create_key(user=owner, name="tests", server_users=server_users)
        return KeyedClient(Client(), owner, key)

    return make


@pytest.fixture
def api(keyed: Callable[..., KeyedClient]) -> KeyedClient:
    return keyed()
