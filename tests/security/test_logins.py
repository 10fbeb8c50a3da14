"""Password guessing: the admin's sign-in goes through allauth's, whose limits hold in every
gunicorn worker at once.

The admin's own sign-in form checked passwords with no limit: 30 wrong passwords, then the
right one, signed in. Now /admin/login/ sends people to allauth's sign-in page, which counts
failed attempts per account and per address in the cache (ACCOUNT_RATE_LIMITS); with
CACHE_BACKEND=redis every process counts together.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import requests
from django.conf import settings
from django.urls import reverse

from bench.harness import WebServer, gunicorn_server
from tests.celery_worker import current_database_url

PASSWORD = "correct-horse-battery-9"
SIGN_IN = reverse("account_login")
ADMIN_LOGIN = reverse("admin:login")
TOO_MANY = "Too many failed login attempts"
WRONG = "The username and/or password you specified are not correct."
# Wrong passwords one account may take in the window: the "key" rate of login_failed.
[LIMIT] = [
    int(rate.split("/")[0])
    for rate in settings.ACCOUNT_RATE_LIMITS["login_failed"].split(",")
    if rate.endswith("/key")
]


def staff_user(make_user: Any, name: str) -> Any:
    user = make_user(name, password=PASSWORD)
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def signed_in(client: Any) -> bool:
    return "_auth_user_id" in client.session


# --- in one process: where the admin's sign-in leads ------------------------------------------


@pytest.mark.django_db
def test_thirty_wrong_passwords_then_the_right_one_do_not_sign_in_through_the_admin(
    client, make_user
):
    root = staff_user(make_user, "root")
    to_admin = f"{ADMIN_LOGIN}?next=/admin/"

    answers = [
        client.post(to_admin, {"username": root.username, "password": f"guess-{n}"})
        for n in range(30)
    ]
    answers.append(client.post(to_admin, {"username": root.username, "password": PASSWORD}))

    assert not signed_in(client)
    assert {answer.status_code for answer in answers} == {302}
    assert {answer["Location"] for answer in answers} == {f"{SIGN_IN}?next=%2Fadmin%2F"}
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_the_admin_sends_people_to_the_sites_sign_in_and_back_to_where_they_were_going(
    client, make_user
):
    root = staff_user(make_user, "root")

    page = client.get("/admin/kitsu_sync/", follow=True)
    assert [hop for hop, _ in page.redirect_chain] == [
        f"{ADMIN_LOGIN}?next=/admin/kitsu_sync/",
        f"{SIGN_IN}?next=%2Fadmin%2Fkitsu_sync%2F",
    ]
    signed = client.post(
        SIGN_IN, {"login": root.username, "password": PASSWORD, "next": "/admin/kitsu_sync/"}
    )

    assert signed.status_code == 302
    assert signed["Location"] == "/admin/kitsu_sync/"
    assert client.get("/admin/kitsu_sync/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", ["https://elsewhere.example/", "//elsewhere.example/"])
def test_the_admin_sign_in_drops_a_next_address_outside_the_site(client, next_url):
    response = client.get(f"{ADMIN_LOGIN}?{urlencode({'next': next_url})}")

    assert response["Location"] == f"{SIGN_IN}?next=%2Fadmin%2F"


@pytest.mark.django_db
def test_a_signed_in_user_who_is_not_staff_is_told_so_instead_of_going_round_in_circles(
    client, make_user
):
    client.force_login(make_user("viewer"))

    response = client.get(f"{ADMIN_LOGIN}?next=/admin/")

    assert response.status_code == 403
    page = unescape(response.content.decode())
    assert "You are signed in as viewer, and that account may not use the admin." in page


@pytest.mark.django_db
def test_signed_in_staff_go_straight_to_the_admin(client, make_user):
    client.force_login(staff_user(make_user, "root"))

    response = client.get(f"{ADMIN_LOGIN}?next=/admin/kitsu_sync/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/kitsu_sync/"


@pytest.mark.django_db
def test_the_admins_password_change_is_the_sites_with_its_limits(client, make_user):
    client.force_login(staff_user(make_user, "root"))

    response = client.post(
        "/admin/password_change/",
        {"old_password": "a-guess", "new_password1": "x" * 12, "new_password2": "x" * 12},
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/change/"


@pytest.mark.django_db
def test_wrong_passwords_lock_the_account_whichever_login_names_it(client, make_user):
    root = staff_user(make_user, "root")
    for n in range(LIMIT):
        wrong = client.post(SIGN_IN, {"login": root.username, "password": f"guess-{n}"})
        assert WRONG in unescape(wrong.content.decode())

    # The same account by its e-mail address: still the same budget, spent.
    refused = client.post(SIGN_IN, {"login": root.email, "password": PASSWORD})

    assert TOO_MANY in refused.content.decode()
    assert not signed_in(client)
    # Another account, from the same address, still signs in.
    other = make_user("other", password=PASSWORD)
    assert client.post(SIGN_IN, {"login": other.username, "password": PASSWORD}).status_code == 302
    assert signed_in(client)


# --- several processes: gunicorn's workers ----------------------------------------------------


@contextmanager
def sign_in_server(log_dir: Path, *, cache: str) -> Iterator[WebServer]:
    """gunicorn with 3 workers, each replaced after one request: every request is answered by
    a process that has seen none of the earlier ones."""
    environment = {
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_BACKEND": cache,
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on 127.0.0.1: cookies without the Secure flag, or the client drops them.
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_CMD_ARGS": "--max-requests 1 --preload",
    }
    with gunicorn_server(environment, workers=3, threads=1, log_dir=log_dir) as server:
        yield server


def forget_sign_in_attempts() -> None:
    """allauth's counters in the shared cache (the test's own Redis database)."""
    store = redis.Redis.from_url(settings.REDIS_URL)
    for key in store.scan_iter(match="*:allauth:rl:allauth.account:*"):
        store.delete(key)


class Browser:
    """Someone at the admin's sign-in page, over a new connection for every request (gunicorn's
    sync workers close each one)."""

    CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        # Wherever /admin/login/ leads: the form found there is the one filled in.
        page = self.session.get(f"{base_url}{ADMIN_LOGIN}?next=/admin/", timeout=30)
        page.raise_for_status()
        self.form_url = page.url
        self.csrf_token = self.CSRF_FIELD.search(page.text)[1]

    def sign_in(self, username: str, password: str) -> str:
        """What came of it: "signed in" (the admin's index), "limited" or "refused"."""
        answer = self.session.post(
            self.form_url,
            # Both forms' field names: allauth's `login`, the admin's `username`.
            data={
                "csrfmiddlewaretoken": self.csrf_token,
                "login": username,
                "username": username,
                "password": password,
                "next": "/admin/",
            },
            headers={"Referer": self.form_url},
            timeout=30,
        )
        answer.raise_for_status()
        # As a browser would: the next post carries the token of the page it was made from.
        token = self.CSRF_FIELD.search(answer.text)
        self.csrf_token = token[1] if token else self.csrf_token
        if answer.url == f"{self.base_url}/admin/" and "Site administration" in answer.text:
            return "signed in"
        return "limited" if TOO_MANY in answer.text else "refused"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_failed_sign_in_limit_holds_across_gunicorn_workers(make_user, tmp_path):
    victim = staff_user(make_user, f"root-{uuid.uuid4().hex[:8]}")
    bystander = staff_user(make_user, f"admin-{uuid.uuid4().hex[:8]}")
    forget_sign_in_attempts()
    try:
        with sign_in_server(tmp_path, cache="redis") as server:
            attacker = Browser(server.url)
            guesses = [attacker.sign_in(victim.username, f"guess-{n}") for n in range(LIMIT)]
            # The right password, three times, each in a process that saw no earlier attempt.
            right = [attacker.sign_in(victim.username, PASSWORD) for _ in range(3)]
            honest = Browser(server.url).sign_in(bystander.username, PASSWORD)
            served = server.served()
    finally:
        forget_sign_in_attempts()

    assert guesses == ["refused"] * LIMIT
    assert right == ["limited"] * 3
    assert honest == "signed in"
    posts = [row for row in served if row.method == "POST"]
    assert [row.path for row in posts] == [SIGN_IN] * (LIMIT + 4)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_a_cache_in_each_process_the_same_guessing_gets_in(make_user, tmp_path):
    """The control for the test above: the attempts really land in separate processes, so
    the refusal there comes from the shared cache (and CACHE_BACKEND=locmem is no place for
    the limits of a server with several workers)."""
    victim = staff_user(make_user, f"root-{uuid.uuid4().hex[:8]}")

    with sign_in_server(tmp_path, cache="locmem") as server:
        attacker = Browser(server.url)
        guesses = [attacker.sign_in(victim.username, f"guess-{n}") for n in range(LIMIT)]
        right = attacker.sign_in(victim.username, PASSWORD)

    assert guesses == ["refused"] * LIMIT
    assert right == "signed in"
