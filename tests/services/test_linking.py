from __future__ import annotations

from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.db import connection

from kitsu_sync.kitsu_api import Resource
from kitsu_sync.models import KitsuToken
from kitsu_sync.services.linking import (
    THROTTLED,
    WRONG_LOGIN,
    LinkFailed,
    link_with_password,
    login_problem,
    password_problem,
    profile_data,
)
from kitsu_sync.services.tokens import get_access_token
from tests.kitsu_api import payloads
from tests.kitsu_api.payloads import AVATAR

pytestmark = pytest.mark.django_db


def test_a_password_link_stores_encrypted_tokens_and_the_kitsu_account(
    make_user, kitsu, sync_requests
):
    user = make_user()
    demo = kitsu.credentials(1)

    link = link_with_password(user=user, login=demo.login, password=demo.password)

    assert link.kitsu_user_id == demo.user_id
    assert link.kitsu_username == demo.slug
    assert link.kitsu_display_name == demo.name
    assert link.kitsu_avatar_url.startswith("http")
    assert link.auth_flow == "password"
    stored = KitsuToken.objects.get(user=user)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM user_kitsu_tokens WHERE id = %s", [link.pk]
        )
        raw_access, raw_refresh = cursor.fetchone()
    assert stored.access_token not in raw_access
    assert stored.refresh_token not in raw_refresh
    account = SocialAccount.objects.get(user=user, provider="kitsu")
    assert account.uid == demo.user_id
    assert account.extra_data["slug"] == demo.slug
    assert not SocialToken.objects.exists()
    assert sync_requests.calls == [{"user_id": user.pk, "trigger": "link", "full": False}]
    assert get_access_token(user_id=user.pk) == stored.access_token


def test_the_profile_url_name_works_as_a_login_too(make_user, kitsu, sync_requests):
    demo = kitsu.credentials(1)
    link = link_with_password(user=make_user(), login=f"  {demo.slug} ", password=demo.password)
    assert link.kitsu_user_id == demo.user_id


def test_a_password_with_url_special_characters_reaches_kitsu_intact(
    make_user, kitsu, sync_requests
):
    special = kitsu.credentials(2)
    assert any(char in special.password for char in "&=+% ")

    link = link_with_password(user=make_user(), login=special.login, password=special.password)

    assert link.kitsu_user_id == special.user_id


@pytest.mark.parametrize("login_of", ["wrong_password", "display_name"])
def test_rejected_credentials_say_what_kitsu_accepts_as_a_login(
    make_user, kitsu, sync_requests, login_of
):
    demo = kitsu.credentials(1)
    login, password = {
        "wrong_password": (demo.login, "not-the-password"),
        "display_name": (demo.name, demo.password),
    }[login_of]

    with pytest.raises(LinkFailed) as info:
        link_with_password(user=make_user(), login=login, password=password)

    assert info.value.message == WRONG_LOGIN
    assert "email or profile URL name" in info.value.message
    assert "not your display name" in info.value.message
    assert not KitsuToken.objects.exists()
    assert not SocialAccount.objects.exists()
    assert sync_requests.calls == []


def test_kitsus_login_throttle_says_to_wait_a_minute(
    kitsu_at, make_user, settings, sandbox_factory, fake_clock
):
    # A fake clock keeps both attempts in one throttle window.
    throttled = sandbox_factory(login_throttle_limit=1, clock=fake_clock)
    kitsu_at(api_url=throttled.api_url, oauth_url=throttled.oauth_url)
    settings.KITSU_CLIENT_ID = settings.KITSU_CLIENT_SECRET = ""
    demo = throttled.credentials(1)
    with pytest.raises(LinkFailed):
        link_with_password(user=make_user(), login=demo.login, password="wrong")

    with pytest.raises(LinkFailed) as info:
        link_with_password(user=make_user(), login=demo.login, password=demo.password)

    assert info.value.message == THROTTLED
    assert "Wait a minute" in info.value.message
    assert info.value.retryable
    assert throttled.stats()["by_status"].get("429") == 1


def test_unreachable_kitsu_gives_a_retryable_failure(kitsu_at, make_user, refused_url):
    url = refused_url
    kitsu_at(api_url=f"{url}/api/edge", oauth_url=f"{url}/api/oauth")

    with pytest.raises(LinkFailed, match="could not be reached") as info:
        link_with_password(user=make_user(), login="demo@example.test", password="pw")

    assert info.value.retryable
    assert "KITSU_OAUTH_URL" in info.value.message


def test_an_unknown_oauth_client_points_at_the_client_settings(make_user, settings, kitsu):
    settings.KITSU_CLIENT_ID = "not-registered"
    demo = kitsu.credentials(1)

    with pytest.raises(LinkFailed, match="KITSU_CLIENT_ID"):
        link_with_password(user=make_user(), login=demo.login, password=demo.password)


def test_a_kitsu_account_linked_to_another_user_is_refused(make_user, kitsu, sync_requests):
    demo = kitsu.credentials(1)
    owner = make_user()
    link_with_password(user=owner, login=demo.login, password=demo.password)
    owner_token = KitsuToken.objects.get(user=owner).access_token

    with pytest.raises(LinkFailed, match="already linked to another Revenge user"):
        link_with_password(user=make_user(), login=demo.login, password=demo.password)

    assert KitsuToken.objects.count() == 1
    assert KitsuToken.objects.get(user=owner).access_token == owner_token


def test_linking_again_after_a_rejected_refresh_clears_the_relink_flag(
    make_user, kitsu, sync_requests
):
    user = make_user()
    demo = kitsu.credentials(1)
    link_with_password(user=user, login=demo.login, password=demo.password)
    KitsuToken.objects.filter(user=user).update(needs_relink=True, relink_reason="rejected")
    kitsu.revoke_tokens(demo.user_id)

    link = link_with_password(user=user, login=demo.login, password=demo.password)

    assert not link.needs_relink
    assert link.relink_reason == ""
    assert SocialAccount.objects.filter(user=user).count() == 1
    assert [call["trigger"] for call in sync_requests.calls] == ["link", "link"]


def test_bad_input_is_refused_before_anything_is_sent_to_kitsu(make_user, kitsu):
    with pytest.raises(LinkFailed, match="control characters"):
        link_with_password(user=make_user(), login="demo@example.test", password="pass\nword")
    assert kitsu.stats()["total"] == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "Enter your Kitsu"),
        ("   ", "Enter your Kitsu"),
        ("a" * 1025, "longer than 1 KB"),
        ("ü" * 513, "longer than 1 KB"),
        ("demo\x00", "control characters"),
        ("demo\t", None),  # surrounding whitespace of a login is stripped
        ("demo@example.test", None),
        ("a" * 1024, None),
    ],
)
def test_login_problems(value, expected):
    problem = login_problem(value)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "Enter your Kitsu password"),
        ("p" * 1025, "longer than 1 KB"),
        ("pass\tword", "control characters"),
        ("pass\x7fword", "control characters"),
        (" spaces are kept ", None),
        ("p&ss=w0rd +%ü", None),
    ],
)
def test_password_problems(value, expected):
    problem = password_problem(value)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


# --- profile_data: what a link keeps of the Kitsu profile --------------------------------------


def kitsu_user(**attributes) -> Resource:
    return Resource(type="users", id="1001", attributes=payloads.demo_user_attributes(**attributes))


def test_profile_data_keeps_the_id_and_the_few_attributes_needed():
    assert profile_data(kitsu_user()) == {
        "id": "1001",
        "slug": "demo",
        "name": "Demo Watcher",
        "email": "demo@example.test",
        "avatar": AVATAR,
    }


def test_profile_data_leaves_out_attributes_kitsu_hides():
    # email is a self-only attribute: absent when Kitsu does not treat the caller as the user.
    data = profile_data(Resource(type="users", id="7", attributes={"slug": "x", "avatar": None}))
    assert data == {"id": "7", "slug": "x"}


def test_profile_data_says_so_when_kitsu_treats_the_new_token_as_anonymous():
    # Kitsu answers filter[self] with an empty list, not 401, for a token it does not know.
    with pytest.raises(OAuth2Error, match="did not recognise it"):
        profile_data(None)


@pytest.mark.parametrize(
    "resource",
    [Resource(type="anime", id="1"), Resource(type="users", id=""), Resource(type="users", id="x")],
)
def test_profile_data_refuses_something_that_is_not_a_kitsu_user(resource):
    with pytest.raises(OAuth2Error):
        profile_data(resource)


def test_one_user_cannot_spend_everyones_kitsu_sign_in_budget(kitsu: Any, make_user: Any) -> None:
    guesser, other = make_user(), make_user()
    victim = kitsu.credentials(1)
    for _ in range(3):
        with pytest.raises(LinkFailed, match="rejected the login"):
            link_with_password(user=guesser, login=victim.login, password="wrong-guess")
    grants = kitsu.stats()["by_route"].get("POST /api/oauth/token", 0)

    with pytest.raises(LinkFailed, match="At most 3 sign-in attempts a minute from your account"):
        link_with_password(user=guesser, login="someone-else@example.test", password="x-guess-1")
    # The same Kitsu login, from another Revenge account: limited too.
    with pytest.raises(LinkFailed, match="for this Kitsu login"):
        link_with_password(user=other, login=victim.login.upper(), password="another-guess")

    assert kitsu.stats()["by_route"].get("POST /api/oauth/token", 0) == grants
    # Everyone else still links.
    mine = kitsu.credentials(2)
    assert link_with_password(user=other, login=mine.login, password=mine.password)


def test_the_server_keeps_part_of_kitsus_budget_in_reserve(
    kitsu: Any, make_user: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr("kitsu_sync.services.linking.LINK_LIMITS", (("server", 2, 60),))
    first, second, third = make_user(), make_user(), make_user()
    for user, index in ((first, 1), (second, 2)):
        credentials = kitsu.credentials(index)
        link_with_password(user=user, login=credentials.login, password=credentials.password)

    with pytest.raises(LinkFailed, match="Many people are linking Kitsu"):
        link_with_password(user=third, login="third@example.test", password="third-pass-1")
