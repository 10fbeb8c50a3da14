"""The web UI against bad requests: CSRF on every URL, GETs that change nothing, users who
cannot reach each other's data, hostile form input, and Kitsu text that must not become HTML.

Already covered in tests/views/test_pages.py (not repeated here): sign-in required on every page,
Sync now refusing GET, CSRF refusals on the three kitsu_sync forms, the basic bad-input cases
of the password form, and another user's sync run answering 404.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from kitsu_sync import health
from kitsu_sync.kitsu_api.errors import error_for_response
from kitsu_sync.models import (
    Anime,
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    SyncOutcome,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    WatchStatus,
)
from kitsu_sync.services.kitsu_errors import describe_sync_error
from tests.web_support import DASHBOARD, LIBRARY, LINK, SYNC, UNLINK, add_entries, linked

pytestmark = pytest.mark.django_db

CSRF_FAILURE = "CSRF verification failed"
# The JSON API authenticates with API keys, never with the session cookie, so a browser
# cannot be made to use it (what CSRF protects against): it is exempt from CSRF, and refuses
# every request without a key, signed in or not.
API_ROOT = "api/v1/"
API_PAGES = ("api/v1", "api/v1/openapi.json", "api/v1/docs")
# What the API answers a request without a key: never 2xx, never a change.
REFUSED_WITHOUT_KEY = (401, 404, 405)


# --- every URL of the project ------------------------------------------------------------------


def url_patterns(
    patterns: list[Any] | None = None, prefix: str = ""
) -> list[tuple[str, URLPattern]]:
    """(route text, pattern) for every URL the project serves, admin and allauth included."""
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            found += url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            found.append((prefix + str(pattern.pattern), pattern))
    return found


ROUTES = url_patterns()
# Regex routes, each with a value its pattern accepts.
REGEX_EXAMPLES = {
    "(?P<app_label>": "kitsu_sync/",
    "(?P<url>": "no-such-page/",
    "(?P<key>[-:\\w]+)": "confirm-email/abc/",
    "(?P<uidb36>": "password/reset/key/1-abc/",
}


def _kitsu_anime_id(user: Any) -> int:
    entry = LibraryEntry.objects.filter(user=user).select_related("anime").first()
    return entry.anime.kitsu_id if entry else 1


def _object_pk(route: str, fallback: Any) -> str:
    match = re.search(r"admin/(\w+)/(\w+)/<path:object_id>", route)
    if match:
        row = apps.get_model(match[1], match[2])._default_manager.order_by("pk").first()
        return str(row.pk if row else 1)
    return str(fallback)


def concrete_path(route: str, *, run: SyncRun, user: Any) -> str:
    """A path that resolves to `route`, with ids of real rows where the route takes one."""
    if "(?P<" in route:
        head = route.split("^", 1)[0] if "^" in route else route.split("(", 1)[0]
        for marker, example in REGEX_EXAMPLES.items():
            if marker in route:
                return "/" + head + example
        raise AssertionError(f"no example for {route}")
    path = route.replace("<int:pk>", str(run.pk)).replace("<id>", str(user.pk))
    path = path.replace("<str:token>", "not-an-invitation")
    for marker in ("<kitsu_anime_id>", "<int:kitsu_anime_id>"):
        path = path.replace(marker, str(_kitsu_anime_id(user)))
    path = path.replace("<path:content_type_id>", str(ContentType.objects.get_for_model(run).pk))
    if "<path:object_id>" in path:
        pk = str(run.pk) if path.startswith("admin/r/") else _object_pk(route, 1)
        path = path.replace("<path:object_id>", pk)
    assert "<" not in path, route
    return "/" + path


@pytest.fixture
def world(make_user: Any, sync_requests: Any) -> dict[str, Any]:
    """An admin who is also a linked Kitsu user with a list and history, and a second user."""
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    other = make_user("other")
    for user in (admin, other):
        # As an allauth sign-up leaves it (for a user made without one, allauth's e-mail page
        # adds this row on its first GET: the one write a GET makes, and not this project's).
        EmailAddress.objects.create(user=user, email=user.email, primary=True)
        linked(user)
        add_entries(user, 2)
        KitsuSyncState.objects.create(
            user=user, last_sync_status=SyncStatus.SUCCESS, errors=[{"reason": "a problem"}]
        )
    run = SyncRun.objects.create(
        user=admin, trigger=SyncTrigger.MANUAL, direction="import_only", outcome="success"
    )
    health.record_beat_tick()  # so that /health/ answers 200 too
    return {"admin": admin, "other": other, "run": run}


def paths(world: dict[str, Any]) -> list[str]:
    return [concrete_path(route, run=world["run"], user=world["admin"]) for route, _ in ROUTES]


def test_every_example_path_reaches_its_own_view(world):
    for (route, pattern), path in zip(ROUTES, paths(world), strict=True):
        if route.startswith(API_ROOT):
            # django-ninja names one URL per operation; a path's operations share one view.
            assert resolve(path).route == route, (route, path)
        else:
            assert resolve(path).func == pattern.callback, (route, path)


def test_no_view_but_the_key_authenticated_api_is_exempt_from_csrf(world):
    exempt = [route for route, p in ROUTES if getattr(p.callback, "csrf_exempt", False)]
    assert exempt
    assert all(route.startswith(API_ROOT) for route in exempt), exempt
    assert len(ROUTES) > 100  # admin, allauth and kitsu_sync are all in the walk
    # A signed-in browser session is no key: the API's data needs a key.
    client = Client()
    client.force_login(world["admin"])
    for path in paths(world):
        if path.startswith("/" + API_ROOT) and path.strip("/") not in API_PAGES:
            assert client.get(path).status_code in REFUSED_WITHOUT_KEY, path


def test_every_url_refuses_a_post_without_a_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["admin"])
    before = database_rows()

    refused = {}
    for (_, pattern), path in zip(ROUTES, paths(world), strict=True):
        response = client.post(path, {"library": "delete", "login": "a", "password": "b"})
        if getattr(pattern.callback, "csrf_exempt", False):
            # The key-authenticated API: no CSRF token needed, but no key: refused all the same.
            refused[path] = (403 if response.status_code in REFUSED_WITHOUT_KEY else 0, True)
            continue
        refused[path] = (response.status_code, CSRF_FAILURE in response.content.decode())

    assert {path: result for path, result in refused.items() if result != (403, True)} == {}
    assert database_rows() == before
    assert KitsuToken.objects.count() == 2


def test_the_same_post_with_its_csrf_token_gets_through(world, sync_requests):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["admin"])
    token = client.get(DASHBOARD).context["csrf_token"]

    response = client.post(SYNC, {"csrfmiddlewaretoken": str(token)})

    assert response.status_code == 302
    assert [call["user_id"] for call in sync_requests.calls] == [world["admin"].pk]


def database_rows() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the sessions (a GET may refresh its own session)."""
    rows = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table == "django_session":
                continue
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from introspection)
            rows[table] = sorted(map(repr, cursor.fetchall()))
    return rows


# Kitsu's catalogue pages ask Kitsu for what they show and keep its answer (Anime rows and
# catalogue listings: a cache of Kitsu's data, not anyone's); they change nothing else.
CATALOG_PAGES = ("/anime/",)
KITSU_CACHE_TABLES = ("kitsu_sync_anime", "kitsu_sync_cataloglisting")


def test_no_get_changes_anything_or_calls_kitsu(world, sync_requests, kitsu):
    client = Client()
    client.force_login(world["admin"])
    before = database_rows()
    pages = [path for path in paths(world) if not path.startswith(CATALOG_PAGES)]

    statuses = {path: client.get(path).status_code for path in pages}

    assert database_rows() == before
    assert sync_requests.calls == []
    assert kitsu.stats()["total"] == 0
    assert {path: s for path, s in statuses.items() if s >= 500} == {}
    # The pages themselves were reached, not only redirects to a sign-in page.
    assert statuses[DASHBOARD] == statuses[LIBRARY] == statuses[UNLINK] == 200
    assert statuses["/admin/kitsu_sync/kitsusyncstate/"] == 200


def test_the_catalogue_pages_change_nothing_but_the_kept_kitsu_answers(world, sync_requests, kitsu):
    client = Client()
    client.force_login(world["admin"])
    before = database_rows()
    pages = [path for path in paths(world) if path.startswith(CATALOG_PAGES)]
    assert len(pages) >= 4  # an anime, search, trending, season

    statuses = {path: client.get(path).status_code for path in pages}

    after = database_rows()
    changed = {table for table in after if after[table] != before.get(table)}
    assert changed <= set(KITSU_CACHE_TABLES), changed
    assert sync_requests.calls == []
    assert {path: s for path, s in statuses.items() if s >= 500} == {}


# --- one user cannot reach another's data ------------------------------------------------------


def test_another_users_sync_run_is_indistinguishable_from_a_missing_one(client, world):
    theirs = SyncRun.objects.create(
        user=world["other"], trigger=SyncTrigger.MANUAL, direction="import_only"
    )
    client.force_login(world["admin"])

    taken = client.get(reverse("kitsu_sync:sync_run", args=[theirs.pk]))
    missing = client.get(reverse("kitsu_sync:sync_run", args=[theirs.pk + 1000]))

    assert taken.status_code == missing.status_code == 404
    assert taken.content.replace(str(theirs.pk).encode(), b"") == missing.content.replace(
        str(theirs.pk + 1000).encode(), b""
    )


def test_pages_show_only_the_signed_in_users_link_state_list_and_history(client, make_user):
    me, stranger = make_user("me"), make_user("stranger")
    linked(me, name="Me On Kitsu")
    linked(stranger, name="Stranger On Kitsu", slug="stranger-slug")
    KitsuSyncState.objects.create(user=me, errors=[{"reason": "my own problem"}])
    KitsuSyncState.objects.create(
        user=stranger, entries_synced=777, errors=[{"reason": "stranger's problem"}]
    )
    anime = Anime.objects.create(kitsu_id=4242, title="Stranger's Secret Show")
    LibraryEntry.objects.create(user=stranger, anime=anime, status=WatchStatus.WATCHING)
    their_run = SyncRun.objects.create(
        user=stranger, trigger=SyncTrigger.MANUAL, direction="import_only"
    )
    client.force_login(me)

    pages = [
        client.get(DASHBOARD),
        client.get(LIBRARY, {"user": stranger.pk, "user_id": stranger.pk, "status": ""}),
        client.get(UNLINK),
    ]

    for page in pages:
        body = page.content.decode()
        assert page.status_code == 200
        for marker in ("Stranger On Kitsu", "stranger-slug", "stranger's problem", "777"):
            assert marker not in body
        assert "Stranger's Secret Show" not in body
        assert reverse("kitsu_sync:sync_run", args=[their_run.pk]) not in body
    assert "Me On Kitsu" in pages[0].content.decode()
    assert "my own problem" in pages[0].content.decode()


def test_sync_now_and_unlink_ignore_any_other_user_named_in_the_request(
    client, make_user, sync_requests
):
    me, stranger = make_user("me"), make_user("stranger")
    linked(me)
    linked(stranger)
    add_entries(stranger, 2)
    client.force_login(me)
    naming_the_stranger = {
        "user": stranger.pk,
        "user_id": stranger.pk,
        "username": stranger.username,
        "pk": stranger.pk,
    }

    client.post(SYNC, naming_the_stranger)
    client.post(UNLINK, {"library": "delete", **naming_the_stranger})

    assert [call["user_id"] for call in sync_requests.calls] == [me.pk]
    assert not KitsuToken.objects.filter(user=me).exists()
    assert KitsuToken.objects.filter(user=stranger).exists()
    assert LibraryEntry.objects.filter(user=stranger).count() == 2


def test_the_admin_is_closed_to_users_who_are_not_staff(client, make_user):
    user = make_user()
    linked(user)
    client.force_login(user)

    response = client.get("/admin/kitsu_sync/kitsutoken/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- the password form ------------------------------------------------------------------------


# Long and with a hyphen, so that a CSRF token or nonce in the page cannot contain it by chance
# ("pw" once matched one).
PASSWORD = "pw-never-echoed"


@pytest.mark.parametrize(
    ("login", "password", "message"),
    [
        ("   ", PASSWORD, "Enter the email or profile URL name"),
        ("", "", "Enter your Kitsu password"),
        ("a" * 1_000_000, PASSWORD, "longer than 1 KB"),
        ("demo@example.test", "p" * 1_000_000, "longer than 1 KB"),
        ("demo@example.test", "pass\x00word", "Null characters are not allowed"),
        ("demo@example.test", "pass\x7fword", "control characters"),
        ("demo@example.test", "pass\u0085word", "control characters"),
        ("demo@example.test", "pass\tword", "control characters"),
        ("demo\r\n@example.test", PASSWORD, "control characters"),
    ],
    ids=[
        "blank-login",
        "both-empty",
        "1MB-login",
        "1MB-password",
        "NUL",
        "DEL",
        "NEL",
        "tab",
        "CRLF-login",
    ],
)
def test_the_password_form_refuses_hostile_input_with_a_message(
    client, make_user, kitsu, login, password, message
):
    client.force_login(make_user())

    response = client.post(LINK, {"login": login, "password": password})

    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    if password.strip():
        assert password not in body  # the login is kept for correcting; the password never
    assert kitsu.stats()["total"] == 0
    assert not KitsuToken.objects.exists()


def test_a_body_over_djangos_upload_limit_is_refused_before_the_form(
    client, make_user, kitsu, settings
):
    client.force_login(make_user())
    password = "p" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = client.post(LINK, {"login": "demo@example.test", "password": password})

    assert response.status_code == 400
    assert password[:2000] not in response.content.decode()
    assert kitsu.stats()["total"] == 0


# --- Kitsu's words are shown as text, never as HTML --------------------------------------------

SCRIPT = "<script>alert('kitsu')</script>"
IMG = '<img src=x onerror="alert(1)">'


def hostile_kitsu_error() -> str:
    """What the sync records for a 422 whose detail carries markup, built as the sync does."""
    error = error_for_response(422, {"errors": [{"title": "Invalid", "detail": SCRIPT}]})
    return describe_sync_error(error)


def test_kitsu_text_is_escaped_on_the_dashboard_run_page_library_and_admin(client, make_user):
    user = make_user("viewer")
    user.is_staff = user.is_superuser = True
    user.save()
    link = linked(user, name=SCRIPT, slug="x")
    KitsuToken.objects.filter(pk=link.pk).update(needs_relink=True, relink_reason=SCRIPT)
    reason = hostile_kitsu_error()
    assert SCRIPT in reason  # Kitsu's detail is kept, word for word, in what is recorded
    errors = [{"title": IMG, "reason": reason, "anime": 1}]
    state = KitsuSyncState.objects.create(
        user=user, last_sync_status=SyncStatus.PARTIAL, errors=errors
    )
    run = SyncRun.objects.create(
        user=user,
        trigger=SyncTrigger.MANUAL,
        direction="import_only",
        outcome=SyncOutcome.PARTIAL,
        errors=errors,
        conflict_log=[
            {"anime": 1, "title": IMG, "field": "notes", "local": SCRIPT, "remote": "", "kept": ""}
        ],
    )
    anime = Anime.objects.create(kitsu_id=1, title=SCRIPT, poster_url='https://x/"onerror="1')
    LibraryEntry.objects.create(user=user, anime=anime, status=WatchStatus.WATCHING, notes=SCRIPT)
    client.force_login(user)

    pages = {
        "dashboard": client.get(DASHBOARD),
        "run": client.get(reverse("kitsu_sync:sync_run", args=[run.pk])),
        "library": client.get(LIBRARY),
        "admin state": client.get(f"/admin/kitsu_sync/kitsusyncstate/{state.pk}/change/"),
        "admin run": client.get(f"/admin/kitsu_sync/syncrun/{run.pk}/change/"),
        "admin link": client.get(f"/admin/kitsu_sync/kitsutoken/{link.pk}/change/"),
    }

    for name, page in pages.items():
        body = page.content.decode()
        assert page.status_code == 200, name
        assert SCRIPT not in body, name
        assert IMG not in body, name
        assert '"onerror="' not in body, name
    escaped_script = "&lt;script&gt;alert(&#x27;kitsu&#x27;)&lt;/script&gt;"
    assert escaped_script in pages["dashboard"].content.decode()
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in pages["run"].content.decode()
