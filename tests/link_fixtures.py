"""Fixtures and helpers shared by the linking tests (tokens, linking, provider, views, commands).

Test modules outside a conftest's reach re-export the fixtures they use by assignment
(`kitsu_settings = link_fixtures.kitsu_settings`).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.utils import timezone

from kitsu_sync.kitsu_api import RetryPolicy
from kitsu_sync.kitsu_client import get_kitsu_client, get_transport
from kitsu_sync.models import AuthFlow, KitsuToken
from kitsu_sync.services import schedule
from kitsu_sync.services.tokens import store_link
from revenge_site.settings import kitsu_socialaccount_providers
from tests.sync_support import sandbox_grant

TOKEN_ROUTE = "POST /api/oauth/token"
# Connect retries without waiting, so that "Kitsu unreachable" tests stay fast.
FAST_RETRY = RetryPolicy(attempts=2, backoff=0.0, backoff_max=0.0, jitter=0.0)


def token_requests(sandbox: Any) -> int:
    return sandbox.stats()["by_route"].get(TOKEN_ROUTE, 0)


def refused_url() -> str:
    """A localhost URL on which nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def point_kitsu_at(settings: Any, *, api_url: str, oauth_url: str) -> None:
    settings.KITSU_API_URL = api_url
    settings.KITSU_OAUTH_URL = oauth_url
    get_transport.cache_clear()
    get_transport().retry = FAST_RETRY


@pytest.fixture
def kitsu_at(settings: Any) -> Iterator[Callable[..., None]]:
    """Point Django's Kitsu client anywhere (another sandbox, a dead port) for one test."""

    def point(*, api_url: str, oauth_url: str) -> None:
        point_kitsu_at(settings, api_url=api_url, oauth_url=oauth_url)

    yield point
    get_transport.cache_clear()


@pytest.fixture
def kitsu_settings(settings: Any, sandbox: Any) -> Iterator[Any]:
    """Django talks to the sandbox, with its registered OAuth client; yields the sandbox."""
    settings.KITSU_CLIENT_ID = sandbox.client_id
    settings.KITSU_CLIENT_SECRET = sandbox.client_secret
    settings.KITSU_AUTH_FLOW = "password"
    settings.SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
        client_id=sandbox.client_id, client_secret=sandbox.client_secret, flow="password"
    )
    point_kitsu_at(settings, api_url=sandbox.api_url, oauth_url=sandbox.oauth_url)
    yield sandbox
    get_transport.cache_clear()


@pytest.fixture
def code_flow(settings: Any, kitsu_settings: Any) -> Any:
    """KITSU_AUTH_FLOW=authorization_code (the sandbox fixture enables the code grant)."""
    settings.KITSU_AUTH_FLOW = "authorization_code"
    settings.SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
        client_id=kitsu_settings.client_id,
        client_secret=kitsu_settings.client_secret,
        flow="authorization_code",
    )
    return kitsu_settings


@dataclass
class SyncRequests:
    """What `request_sync` was asked to do (the sync engine itself is not under test here)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    answer: bool = True

    def __call__(self, *, user_id: int, trigger: str, full: bool = False) -> bool:
        self.calls.append({"user_id": user_id, "trigger": trigger, "full": full})
        return self.answer


@pytest.fixture
def sync_requests(monkeypatch: pytest.MonkeyPatch) -> SyncRequests:
    recorder = SyncRequests()
    monkeypatch.setattr(schedule, "request_sync", recorder)
    return recorder


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., AbstractBaseUser]:
    counter = iter(range(1, 10_000))

    def make(username: str | None = None, *, password: str = "revenge-pass-1") -> Any:
        name = username or f"viewer{next(counter)}"
        return django_user_model.objects.create_user(
            name, email=f"{name}@revenge.test", password=password
        )

    return make


@pytest.fixture
def link_user(kitsu_settings: Any) -> Callable[..., KitsuToken]:
    """Link a Revenge user to seeded Kitsu user `index` with a real sandbox token."""

    def link(user: Any, index: int = 1, *, expires_in: timedelta | None = None) -> KitsuToken:
        credential = kitsu_settings.credentials(index)
        token = sandbox_grant(kitsu_settings, credential, get_transport())
        kitsu_user = get_kitsu_client().current_user(token=token.access_token)
        assert kitsu_user is not None
        stored = store_link(user=user, token=token, kitsu_user=kitsu_user, flow=AuthFlow.PASSWORD)
        if expires_in is not None:
            KitsuToken.objects.filter(pk=stored.pk).update(
                token_expires_at=timezone.now() + expires_in
            )
            stored.refresh_from_db()
        return stored

    return link


# --- the sandbox's authorize page, driven like a browser --------------------------------------

HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def callback_query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


class KitsuAuthorizePage:
    """Signs in on the sandbox's authorize page and approves or denies, like a person would.

    allauth stopped shipping its provider test mixin (65.10); this is the small part we need.
    """

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.http = requests.Session()

    def decide(self, authorize_url: str, *, index: int = 1, approve: bool = True) -> str:
        """Sign in as seeded user `index` and answer; returns the redirect back to the site."""
        assert authorize_url.startswith(self.sandbox.oauth_url), authorize_url
        page = self.http.get(authorize_url, timeout=10)
        assert page.status_code == 200, page.text
        if 'action="/api/oauth/sign_in"' in page.text:
            credential = self.sandbox.credentials(index)
            return_to = unescape(re.search(r'name="return_to" value="([^"]*)"', page.text)[1])
            page = self.http.post(
                urljoin(self.sandbox.base_url, "/api/oauth/sign_in"),
                data={
                    "username": credential.login,
                    "password": credential.password,
                    "return_to": return_to,
                },
                timeout=10,
            )
            assert page.status_code == 200, page.text
        fields = {name: unescape(value) for name, value in HIDDEN_INPUT.findall(page.text)}
        assert "authenticity_token" in fields, page.text
        # The Deny form's own hidden field: sent only to deny.
        fields.pop("_method", None)
        if not approve:
            fields["_method"] = "delete"
        answer = self.http.post(
            urljoin(self.sandbox.base_url, "/api/oauth/authorize"),
            data=fields,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]


def site_path(url: str) -> str:
    """The path and query of a redirect back to the Django site (for the test client)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def database_text() -> str:
    """Every row of every table as text, sessions decoded."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from introspection)
            chunks.extend(repr(row) for row in cursor.fetchall())
    for session in SessionStore.get_model_class().objects.all():
        chunks.append(repr(SessionStore().decode(session.session_data)))
    return "\n".join(chunks)
