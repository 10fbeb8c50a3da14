"""No Kitsu token or password outside the encrypted columns: not in any log line at any level,
the admin, the recorded errors, the database's other rows, or an exception's text.

One scenario drives every path that handles a secret, against the sandbox over real HTTP:
both link flows (the password form, a wrong password, the authorization-code redirect, the
kitsu_link command), an import, a refresh after Kitsu expired the token, a refresh Kitsu
rejects, a 503 burst, and an unreachable Kitsu. Every log record of every logger, at DEBUG, is
kept as text; then every secret the sandbox ever issued or was sent is searched for.

Where tokens *are* at rest is checked in tests/test_encryption.py (the raw table holds
ciphertext); rotation of the key in tests/management/test_kitsu_rotate_token_key.py.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from kitsu_sync.kitsu_api import KitsuError, password_grant, refresh_grant
from kitsu_sync.kitsu_client import get_kitsu_client, get_transport
from kitsu_sync.models import KitsuSyncState, KitsuToken, SyncOutcome, SyncRun
from kitsu_sync.services import linking, tokens
from kitsu_sync.services.sync import run_sync
from tests.web_support import KitsuAuthorizePage, database_text, site_path

pytestmark = pytest.mark.django_db

WRONG_PASSWORD = "Wr0ng & secret = yes+%"


class EveryRecord(logging.Handler):
    """Keeps each record as all the text it could ever be written as."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"{self.format(record)} {record.args!r} {record.__dict__!r}")


@pytest.fixture
def all_logs() -> Iterator[EveryRecord]:
    """Every logger at DEBUG (urllib3 and the rest included), recorded."""
    handler = EveryRecord()
    loggers = [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for logger, level in levels.items():
        logger.setLevel(level)


def exception_text(error: BaseException) -> str:
    """str, repr, args and the whole chain (causes and contexts) with its traceback."""
    chain = "".join(traceback.format_exception(error))
    return f"{error} {error!r} {error.args!r} {chain}"


def recorded_errors() -> str:
    rows = [
        *KitsuSyncState.objects.values("errors"),
        *SyncRun.objects.values("errors", "conflict_log", "planned_changes"),
        *KitsuToken.objects.values("relink_reason"),
    ]
    return json.dumps(rows, default=str)


def admin_pages(client: Client) -> str:
    urls = [
        "/admin/kitsu_sync/kitsutoken/",
        "/admin/kitsu_sync/kitsusyncstate/",
        "/admin/kitsu_sync/syncrun/",
        "/admin/kitsu_sync/libraryentry/",
        "/admin/socialaccount/socialaccount/",
        "/admin/socialaccount/socialtoken/",
        "/admin/socialaccount/socialapp/",
        "/admin/auth/user/",
    ]
    for model in (KitsuToken, KitsuSyncState, SyncRun):
        urls += [
            f"/admin/kitsu_sync/{model._meta.model_name}/{pk}/change/"
            for pk in model.objects.values_list("pk", flat=True)
        ]
    bodies = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        bodies.append(response.content.decode())
    return "\n".join(bodies)


def test_no_secret_leaves_the_encrypted_columns(
    code_flow, make_user, sync_requests, all_logs, kitsu_at, refused_url
):
    sandbox = code_flow
    exceptions: list[BaseException] = []
    client = Client()

    # --- link: the password form (with a wrong password first) ---------------------------------
    alice = make_user("alice")
    client.force_login(alice)
    special = sandbox.credentials(2)  # the password with & = + % and spaces
    wrong = client.post(
        reverse("kitsu_sync:link_password"), {"login": special.login, "password": WRONG_PASSWORD}
    )
    assert wrong.status_code == 400
    client.post(
        reverse("kitsu_sync:link_password"), {"login": special.login, "password": special.password}
    )
    assert KitsuToken.objects.filter(user=alice).exists()
    pages = [client.get(reverse("kitsu_sync:dashboard")).content.decode()]

    # --- link: the authorization-code flow ------------------------------------------------------
    bob = make_user("bob")
    client.force_login(bob)
    start = client.post(f"{reverse('kitsu_login')}?process=connect&next=/")
    back = KitsuAuthorizePage(sandbox).decide(start["Location"], index=1)
    assert client.get(site_path(back)).status_code == 302
    assert KitsuToken.objects.get(user=bob).auth_flow == "authorization_code"

    # --- link: the command, password on stdin ---------------------------------------------------
    carol = make_user("carol")
    third = sandbox.credentials(3)
    call_command(
        "kitsu_link",
        "carol",
        "--kitsu-login",
        third.login,
        stdin=StringIO(third.password + "\n"),
        stdout=StringIO(),
    )

    # --- sync, refresh after Kitsu expired the token, refresh rejected ---------------------------
    assert run_sync(user_id=alice.pk, trigger="manual", full=True).outcome == SyncOutcome.SUCCESS
    sandbox.expire_tokens(special.user_id)
    assert run_sync(user_id=alice.pk, trigger="manual").outcome == SyncOutcome.SUCCESS
    sandbox.revoke_tokens(special.user_id)
    rejected = run_sync(user_id=alice.pk, trigger="manual")
    assert rejected.outcome == SyncOutcome.FAILED
    assert KitsuToken.objects.get(user=alice).needs_relink

    # --- failures: a 503 burst, an unreachable Kitsu --------------------------------------------
    sandbox.set_faults([{"kind": "status", "count": 20, "path": "/api/edge/library-entries"}])
    assert run_sync(user_id=bob.pk, trigger="manual").outcome == SyncOutcome.FAILED
    sandbox.set_faults([])
    kitsu_at(api_url=f"{refused_url}/api/edge", oauth_url=f"{refused_url}/oauth")
    assert run_sync(user_id=carol.pk, trigger="manual").outcome == SyncOutcome.FAILED
    try:
        linking.link_with_password(user=carol, login=third.login, password=third.password)
    except linking.LinkFailed as error:
        exceptions.append(error)
    kitsu_at(api_url=sandbox.api_url, oauth_url=sandbox.oauth_url)

    # --- the errors the client and services raise, caught as a caller would ---------------------
    try:
        linking.link_with_password(user=carol, login=third.login, password=WRONG_PASSWORD)
    except linking.LinkFailed as error:
        exceptions.append(error)
    try:
        password_grant(get_transport(), username=special.login, password=WRONG_PASSWORD)
    except KitsuError as error:
        exceptions.append(error)
    revoked = KitsuToken.objects.get(user=alice)
    try:
        get_kitsu_client().current_user(token=revoked.access_token)
    except KitsuError as error:
        exceptions.append(error)
    try:
        refresh_grant(get_transport(), refresh_token=revoked.refresh_token)
    except KitsuError as error:
        exceptions.append(error)
    try:
        tokens.refresh_access_token(user_id=alice.pk)
    except tokens.KitsuLinkError as error:
        exceptions.append(error)
    assert len(exceptions) == 6

    # --- what an operator sees ------------------------------------------------------------------
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    EmailAddress.objects.create(user=root, email=root.email, primary=True)
    client.force_login(root)
    pages.append(admin_pages(client))

    # --- the search -----------------------------------------------------------------------------
    issued = list(sandbox.store.tokens.by_token.values())
    secrets = {
        **{f"access token {n}": token.token for n, token in enumerate(issued)},
        **{f"refresh token {n}": token.refresh_token for n, token in enumerate(issued)},
        "alice's password": special.password,
        "wrong password": WRONG_PASSWORD,
        "carol's password": third.password,
        "bob's password (typed on Kitsu's page)": sandbox.credentials(1).password,
        "OAuth client secret": sandbox.client_secret,
    }
    assert len(issued) >= 4  # alice twice (login, refresh), bob, carol
    places = {
        "logs": "\n".join(all_logs.texts),
        "pages and admin": "\n".join(pages),
        "recorded errors": recorded_errors(),
        "database": database_text(),
        "exceptions": "\n".join(exception_text(error) for error in exceptions),
    }
    assert len(all_logs.texts) > 50  # DEBUG really was captured, urllib3's lines included
    assert any(text.startswith("urllib3") for text in all_logs.texts)
    assert "Could not connect to Kitsu" in places["recorded errors"]
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in places.items()
        if secret in text
    ]
    assert leaks == []


def test_an_error_while_linking_reports_no_password(
    client: Any, make_user: Any, monkeypatch: Any
) -> None:
    """A crash inside the link form's request: Django's error report (what ADMINS are mailed)
    shows neither the posted password nor the service's local copy of it."""

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the token answer could not be read")

    monkeypatch.setattr("kitsu_sync.services.linking.password_grant", crash)
    browser = Client(raise_request_exception=False)
    browser.force_login(make_user())
    password = f"pass-{secrets.token_hex(8)}"  # not in this file's source the report quotes

    response = browser.post("/kitsu/link/", {"login": "someone", "password": password})

    assert response.status_code == 500
    report = ExceptionReporter(response.wsgi_request, *response.exc_info)
    assert password not in report.get_traceback_text()
    assert password not in report.get_traceback_html()
