"""Who may create an account: closed unless ACCOUNT_ALLOW_SIGNUP, or for a browser session that
opened an invitation link; sign-in through Kitsu creates no account while closed.

The test environment opens sign-up (tests/test.env) for the other tests' sign-up flows; the
tests here close it wherever they test the shipped default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from html import unescape
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kitsu_sync.models import KitsuToken
from revenge_site import accounts
from tests.web_support import KitsuAuthorizePage, site_path

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SIGN_UP = reverse("account_signup")
SIGN_IN = reverse("account_login")
CLOSED = "Sign-up is closed"
PASSWORD = "a-long-unusual-passphrase-7"


@pytest.fixture
def closed(settings: Any) -> None:
    settings.ACCOUNT_ALLOW_SIGNUP = False


def sign_up(client: Client, username: str) -> Any:
    return client.post(
        SIGN_UP,
        {
            "username": username,
            "email": f"{username}@revenge.test",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )


def users() -> list[str]:
    return sorted(get_user_model().objects.values_list("username", flat=True))


def text(response: Any) -> str:
    return unescape(response.content.decode())


def invite_link(**options: Any) -> str:
    return accounts.invite_path(accounts.make_invite(valid_for=timedelta(days=7), **options))


# --- the setting ------------------------------------------------------------------------------


def test_sign_up_is_closed_unless_the_environment_opens_it(tmp_path):
    env_file = tmp_path / "empty.env"
    env_file.write_text("SECRET_KEY=only-for-this-check\n")
    environment = {k: v for k, v in os.environ.items() if k != "ACCOUNT_ALLOW_SIGNUP"}
    script = "from django.conf import settings; print(settings.ACCOUNT_ALLOW_SIGNUP)"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=ROOT,
        env={
            **environment,
            "ENV_FILE": str(env_file),
            "DJANGO_SETTINGS_MODULE": "revenge_site.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.stdout.strip() == "False", result.stderr
    assert "ACCOUNT_ALLOW_SIGNUP=false" in (ROOT / ".env.example").read_text().splitlines()
    assert "ACCOUNT_ALLOW_SIGNUP=true" in (ROOT / "demo.env").read_text().splitlines()


def test_while_closed_the_sign_up_page_says_so_and_a_post_creates_no_user(client, closed):
    page = client.get(SIGN_UP)
    posted = sign_up(client, "stranger")

    assert CLOSED in text(page)
    assert 'name="password1"' not in text(page)
    assert CLOSED in text(posted)
    assert users() == []


def test_when_open_anyone_can_sign_up(client, settings):
    settings.ACCOUNT_ALLOW_SIGNUP = True

    response = sign_up(client, "newcomer")

    assert response.status_code == 302
    assert users() == ["newcomer"]


@pytest.mark.parametrize("allowed", [True, False])
def test_the_sign_in_page_offers_sign_up_only_while_it_is_open(client, settings, allowed):
    settings.ACCOUNT_ALLOW_SIGNUP = allowed

    page = text(client.get(SIGN_IN))

    assert ('please <a href="/accounts/signup/">sign up</a>' in page) is allowed
    assert 'name="password"' in page


# --- invitations ------------------------------------------------------------------------------


def test_an_invite_opens_sign_up_for_its_browser_session_once(closed):
    invited, someone_else = Client(), Client()
    link = invite_link()

    opened = invited.get(link)
    assert opened.status_code == 302
    assert opened["Location"] == SIGN_UP
    assert 'name="password1"' in text(invited.get(SIGN_UP))
    assert CLOSED in text(someone_else.get(SIGN_UP))
    assert CLOSED in text(sign_up(someone_else, "gatecrasher"))

    assert sign_up(invited, "guest").status_code == 302

    assert users() == ["guest"]
    record = LogEntry.objects.get()
    assert record.user.username == "guest"
    assert record.change_message.startswith("Signed up with invitation ")
    # Spent: the same session (signed out) and any other browser find sign-up closed.
    invited.post(reverse("account_logout"))
    assert CLOSED in text(sign_up(invited, "second"))
    again = someone_else.get(link)
    assert again.status_code == 410
    assert "This invitation was used already" in text(again)
    assert users() == ["guest"]


def test_deleting_the_account_an_invite_made_does_not_open_it_again(closed):
    invited = Client()
    link = invite_link()
    invited.get(link)
    sign_up(invited, "guest")
    get_user_model().objects.filter(username="guest").delete()  # history entries go with it

    again = Client().get(link)

    assert again.status_code == 410
    assert "This invitation was used already" in text(again)


def test_of_two_sign_ups_racing_with_one_invite_only_one_makes_an_account(closed, monkeypatch):
    first, second = Client(), Client()
    link = invite_link()
    first.get(link)
    second.get(link)
    assert sign_up(first, "first").status_code == 302
    # The second sign-up checked the invite at the same moment as the first: it saw it unspent.
    real = accounts.SpentInvite.objects

    class SawItUnspent:
        objects = SimpleNamespace(
            filter=lambda **lookup: SimpleNamespace(
                exists=lambda: False, update=lambda **values: real.filter(**lookup).update(**values)
            ),
            create=real.create,
        )

    monkeypatch.setattr(accounts, "SpentInvite", SawItUnspent)

    response = sign_up(second, "second")

    assert response.status_code == 403
    assert users() == ["first"]


def test_an_invite_for_an_address_fills_it_in_and_names_it_in_the_admin_history(closed, client):
    opened = client.get(invite_link(email="guest@revenge.test"))

    assert opened["Location"] == f"{SIGN_UP}?{urlencode({'email': 'guest@revenge.test'})}"
    assert 'value="guest@revenge.test"' in text(client.get(opened["Location"]))
    sign_up(client, "guest")
    assert LogEntry.objects.get().change_message.endswith(" for guest@revenge.test")


def test_an_expired_invite_is_refused_with_a_page_that_says_when(closed, client, monkeypatch):
    link = invite_link()
    later = timezone.now() + timedelta(days=7, seconds=1)
    monkeypatch.setattr(accounts, "now", lambda: later)

    response = client.get(link)

    assert response.status_code == 410
    assert "This invitation expired on " in text(response)
    assert CLOSED in text(client.get(SIGN_UP))


def test_an_invite_that_expires_after_it_was_opened_closes_sign_up_again(
    closed, client, monkeypatch
):
    client.get(invite_link())
    assert 'name="password1"' in text(client.get(SIGN_UP))
    later = timezone.now() + timedelta(days=8)
    monkeypatch.setattr(accounts, "now", lambda: later)

    assert CLOSED in text(sign_up(client, "late"))
    assert users() == []


def _altered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda token: _altered(token), id="one character changed"),
        pytest.param(lambda token: token[:-6], id="cut short"),
        pytest.param(lambda token: "not-an-invitation", id="made up"),
        pytest.param(
            lambda token: signing.dumps({"n": "x", "x": 4_102_444_800, "e": ""}),
            id="signed for something else",
        ),
    ],
)
def test_an_altered_or_made_up_invite_is_refused_with_a_clear_page(closed, client, make_token):
    token = make_token(accounts.make_invite(valid_for=timedelta(days=7)))

    response = client.get(accounts.invite_path(token))

    assert response.status_code == 400
    assert "This invitation link is not valid: it was changed or cut short" in text(response)
    assert accounts.INVITE_SESSION_KEY not in client.session
    assert CLOSED in text(client.get(SIGN_UP))


def test_an_invite_opened_while_signed_in_says_to_sign_out_first(closed, client, make_user):
    client.force_login(make_user("member"))

    response = client.get(invite_link())

    assert response.status_code == 409
    assert "You are signed in as member. Sign out first" in text(response)


# --- the command ------------------------------------------------------------------------------


def test_revenge_invite_prints_a_link_that_opens_sign_up(closed, client, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://revenge.example.org"]
    out = StringIO()

    call_command("revenge_invite", "--days", "3", stdout=out)

    link, validity = out.getvalue().splitlines()
    assert link.startswith("https://revenge.example.org/accounts/invite/")
    assert validity.startswith("It opens sign-up for one account until ")
    assert client.get(site_path(link))["Location"] == SIGN_UP
    assert sign_up(client, "invitee").status_code == 302
    assert users() == ["invitee"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--days", "0"], "--days must be from 1 to 90."),
        (["--days", "91"], "--days must be from 1 to 90."),
        (["--email", "not an address"], "is not an e-mail address"),
        (["--base-url", "ftp://host"], "is not an http(s) address"),
    ],
)
def test_revenge_invite_refuses_bad_options(arguments, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("revenge_invite", *arguments, stdout=StringIO())


# --- signing in with Kitsu --------------------------------------------------------------------


def start_kitsu(client: Client, *, process: str) -> str:
    """Press "Sign in with Kitsu" (process=login) or "Link Kitsu" (connect)."""
    query = urlencode({"process": process, "next": reverse("kitsu_sync:dashboard")})
    response = client.post(f"{reverse('kitsu_login')}?{query}")
    assert response.status_code == 302, response.content
    return response["Location"]


def test_a_kitsu_sign_in_of_someone_without_an_account_creates_none_while_closed(
    client, code_flow, closed, sync_requests
):
    back = KitsuAuthorizePage(code_flow).decide(start_kitsu(client, process="login"), index=3)

    response = client.get(site_path(back))

    assert CLOSED in text(response)
    assert users() == []
    assert not SocialAccount.objects.exists()
    assert not KitsuToken.objects.exists()
    assert sync_requests.calls == []


def test_linking_kitsu_while_signed_in_still_works_while_closed(
    client, code_flow, closed, make_user, sync_requests
):
    member = make_user("member")
    client.force_login(member)
    back = KitsuAuthorizePage(code_flow).decide(start_kitsu(client, process="connect"))

    response = client.get(site_path(back))

    assert response.status_code == 302
    assert KitsuToken.objects.get(user=member).kitsu_user_id == code_flow.credentials(1).user_id
    assert users() == ["member"]


def test_an_invite_lets_a_kitsu_sign_in_create_one_account(client, code_flow, closed):
    client.get(invite_link())
    back = KitsuAuthorizePage(code_flow).decide(start_kitsu(client, process="login"), index=3)

    client.get(site_path(back))

    kitsu_user = code_flow.credentials(3)
    assert users() == [kitsu_user.slug]
    assert KitsuToken.objects.get().kitsu_user_id == kitsu_user.user_id
    assert LogEntry.objects.get().user.username == kitsu_user.slug
    # Spent: another Kitsu account in the same browser creates nothing.
    client.post(reverse("account_logout"))
    back = KitsuAuthorizePage(code_flow).decide(start_kitsu(client, process="login"), index=2)
    assert CLOSED in text(client.get(site_path(back)))
    assert users() == [kitsu_user.slug]
