"""A person linking Kitsu in a real browser, against the sandbox over HTTP."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command, get_commands
from playwright.sync_api import Page, expect

from kitsu_sync.models import KitsuToken, LibraryEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def run_first_sync(username: str) -> bool:
    """The sync the link asked for, run in this process with the `kitsu_sync` command.

    Returns False while the sync engine (the `kitsu_sync` command) is missing: that step is
    pending.
    """
    if "kitsu_sync" not in get_commands():
        return False
    call_command("kitsu_sync", username, stdout=io.StringIO(), stderr=io.StringIO())
    return True


def test_a_person_links_kitsu_through_the_authorize_page_then_unlinks(
    page: Page,
    live_server: Any,
    sign_in: Any,
    make_user: Any,
    code_flow: Any,
    sync_requests: Any,
) -> None:
    user = make_user("alice")
    demo = code_flow.credentials(1)
    sign_in(page, "alice")

    page.get_by_role("button", name="Link Kitsu").click()
    # Kitsu's side: sign in, then approve.
    expect(page.get_by_role("heading", name="Sign in to Kitsu")).to_be_visible()
    page.fill("#username", demo.login)
    page.fill("#password", demo.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Authorize application")).to_be_visible()
    page.get_by_role("button", name="Authorize").click()

    # Back on Revenge, linked.
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("#kitsu-name")).to_have_text(demo.name)
    expect(page.get_by_role("button", name="Sync now")).to_be_visible()
    link = KitsuToken.objects.get(user=user)
    assert link.auth_flow == "authorization_code"
    assert sync_requests.calls == [{"user_id": user.pk, "trigger": "link", "full": False}]

    synced = run_first_sync("alice")
    if synced:
        page.get_by_role("link", name="My list").click()
        expect(page.locator("#library tbody tr").first).to_be_visible()
        assert LibraryEntry.objects.filter(user=user).exists()
        page.get_by_role("link", name="Dashboard").click()

    page.get_by_role("link", name="Unlink Kitsu").click()
    page.get_by_label("Delete it from Revenge").check()
    page.get_by_role("button", name="Unlink Kitsu").click()
    expect(page.get_by_text("Kitsu is unlinked. Your imported list was deleted.")).to_be_visible()
    expect(page.get_by_role("heading", name="Link your Kitsu account")).to_be_visible()
    assert not KitsuToken.objects.filter(user=user).exists()
    assert not LibraryEntry.objects.filter(user=user).exists()
    if not synced:
        pytest.xfail("pending: 'sees the list after the first sync' needs the sync engine")


def test_a_person_links_kitsu_with_the_password_form(
    page: Page, live_server: Any, sign_in: Any, make_user: Any, kitsu: Any, sync_requests: Any
) -> None:
    user = make_user("bob")
    demo = kitsu.credentials(2)  # a password with & = + % and spaces
    sign_in(page, "bob")

    page.get_by_role("link", name="Link Kitsu").click()
    page.get_by_label("Kitsu email or profile URL name").fill(demo.name)
    page.get_by_label("Kitsu password").fill(demo.password)
    page.get_by_role("button", name="Link Kitsu").click()

    # Kitsu refused the display name: the page says what to use, and the password is gone.
    expect(page.get_by_text("not your display name").first).to_be_visible()
    expect(page.get_by_label("Kitsu password")).to_have_value("")
    assert demo.password not in page.content()

    page.get_by_label("Kitsu email or profile URL name").fill(demo.slug)
    page.get_by_label("Kitsu password").fill(demo.password)
    page.get_by_role("button", name="Link Kitsu").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_text(f"Linked to Kitsu as {demo.name}")).to_be_visible()
    expect(page.locator("#kitsu-name")).to_have_text(demo.name)
    assert KitsuToken.objects.get(user=user).auth_flow == "password"
    assert [call["trigger"] for call in sync_requests.calls] == ["link"]
