"""Who the API answers: a live key, in a header (or, for webhooks only, in the query)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from kitsu_sync.services import api_keys
from tests.api.support import KeyedClient, assert_problem

pytestmark = pytest.mark.django_db


def test_a_request_without_a_key_is_told_how_to_send_one(api: KeyedClient) -> None:
    response = api.get("/library", key="")

    body = assert_problem(response, 401, "API key")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in body["detail"]
    assert body["instance"] == "/api/v1/library"


@pytest.mark.parametrize("key", ["rvk_000000000000_" + "A" * 43, "not-a-key"])
def test_an_unknown_key_is_401(api: KeyedClient, key: str) -> None:
    assert_problem(api.get("/library", key=key), 401)


def test_the_key_is_taken_from_either_header(api: KeyedClient) -> None:
    assert api.get("/library").status_code == 200
    response = api.get("/library", key="", headers={"X-Api-Key": api.key})
    assert response.status_code == 200


def test_a_key_in_the_query_is_refused_outside_the_webhooks(api: KeyedClient) -> None:
    response = api.client.get(f"/api/v1/library?key={api.key}")

    assert_problem(response, 401)


def test_a_revoked_key_is_401(api: KeyedClient) -> None:
    [row] = api_keys.live_keys(user=api.user)
    api_keys.revoke(user=api.user, key_id=row.pk)

    assert_problem(api.get("/library"), 401)


def test_the_api_needs_no_csrf_token_but_still_a_key(
    api: KeyedClient, make_user: Callable[..., Any]
) -> None:
    # A signed-in browser session is not a key: the API never acts on cookies alone.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user())
    response = browser.post(
        "/api/v1/scrobble", data={"kitsu_id": 1, "episode": 1}, content_type="application/json"
    )

    assert_problem(response, 401)
