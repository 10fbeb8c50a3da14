"""Plain helpers for the tests of the web pages and the link flows: the pages' URLs, a stored
link and a list for pages that never call Kitsu, the sandbox's authorize page driven like a
browser, and the whole database as text for searching it for secrets."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from allauth.socialaccount.models import SocialAccount
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from kitsu_sync.kitsu_api import Resource, TokenResponse
from kitsu_sync.models import Anime, KitsuToken, LibraryEntry, WatchStatus
from kitsu_sync.services.tokens import store_link

DASHBOARD = reverse("kitsu_sync:dashboard")
LINK = reverse("kitsu_sync:link_password")
SYNC = reverse("kitsu_sync:sync_now")
UNLINK = reverse("kitsu_sync:unlink")
LIBRARY = reverse("kitsu_sync:library")


def linked(user: Any, *, kitsu_id: str | None = None, **attributes: Any) -> KitsuToken:
    """A stored link with made-up tokens, for pages that never call Kitsu."""
    token = TokenResponse(
        access_token=f"access-{user.pk}",
        refresh_token=f"refresh-{user.pk}",
        token_type="Bearer",
        expires_in=2_592_000,
        scope="public",
        created_at=timezone.now(),
    )
    profile = {
        "slug": f"watcher{user.pk}",
        "name": f"Watcher {user.pk}",
        "avatar": {"medium": f"https://media.example/avatars/{user.pk}.jpg"},
        **attributes,
    }
    kitsu_user = Resource(type="users", id=kitsu_id or str(9000 + user.pk), attributes=profile)
    SocialAccount.objects.create(user=user, provider="kitsu", uid=kitsu_user.id, extra_data={})
    return store_link(user=user, token=token, kitsu_user=kitsu_user, flow="password")


def add_entries(user: Any, count: int, *, status: str = WatchStatus.WATCHING) -> None:
    for number in range(count):
        anime, _ = Anime.objects.get_or_create(
            kitsu_id=100 + number,
            defaults={
                "title": f"Anime {number:03d}",
                "episode_count": 12,
                "poster_url": f"https://media.example/posters/{number}.jpg",
            },
        )
        LibraryEntry.objects.create(user=user, anime=anime, status=status, progress=3, score=80)


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
