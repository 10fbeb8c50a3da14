"""Fixtures of the web pages' tests."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def signed_in(client: Client, make_user: Any) -> Any:
    """A user signed in on `client`."""
    user = make_user()
    client.force_login(user)
    return user
