"""A person keeps their list in a real browser: +1 on a row (then Kitsu is sent the change),
a new rating through the row's Edit form, an entry removed after htmx's confirm dialog, a
title opened, the list sorted and filtered, the list on a 360 px wide phone, and all of it
again without JavaScript (plain forms and pages).

The user is linked to the sandbox's demo account and their Kitsu library imported first, as
after linking (tests/browser/conftest.py: `imported_user`)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db.models import F, Q
from playwright.sync_api import Locator, Page, expect

from kitsu_sync.mapping import score_choices, score_label
from kitsu_sync.models import KitsuOutbox, KitsuToken, LibraryEntry, WatchStatus
from kitsu_sync.services import outbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def pick(user: Any, **filters: Any) -> LibraryEntry:
    """The first of the user's entries (by title) that matches, of an anime Kitsu shows to
    anyone (the anime pages ask Kitsu without the user's token)."""
    entry = (
        LibraryEntry.objects.filter(user=user, anime__nsfw=False, **filters)
        .select_related("anime")
        .order_by("anime__title", "pk")
        .first()
    )
    assert entry is not None, f"the sandbox's demo library has no entry with {filters}"
    return entry


def row_of(page: Page, entry: LibraryEntry) -> Locator:
    return page.locator(f"#library #entry-{entry.pk}")


def test_plus_one_waits_then_is_sent_to_kitsu(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any, two_way: list, kitsu: Any
) -> None:
    user = imported_user("demo")
    entry = pick(user, status=WatchStatus.WATCHING, anime__episode_count__gt=F("progress") + 1)
    enter_as(page, user)
    page.goto(f"{live_server.url}/library/")
    row = row_of(page, entry)
    expect(row).to_contain_text(f"{entry.progress} / {entry.anime.episode_count}")
    expect(row.locator(".kitsu-state")).to_have_attribute("data-state", "in_step")

    row.get_by_role("button", name="+1").click()

    # htmx swapped the row: one episode more, and the change waits in the outbox.
    after = f"{entry.progress + 1} / {entry.anime.episode_count}"
    expect(row).to_contain_text(after)
    expect(row.locator(".kitsu-state")).to_have_attribute("data-state", "waiting")
    expect(row.locator(".kitsu-state")).to_have_text("waiting to be sent to Kitsu")
    assert two_way == [(user.pk,)], "the delivery task was asked for once, for this user"
    assert KitsuOutbox.objects.filter(user=user, anime=entry.anime).exists()

    delivery = outbox.deliver(user_id=user.pk)
    assert delivery.sent == 1, delivery

    page.reload()
    expect(row).to_contain_text(after)
    expect(row.locator(".kitsu-state")).to_have_attribute("data-state", "sent")
    expect(row.locator(".kitsu-state")).to_contain_text(re.compile(r"^sent to Kitsu at "))
    patches = [
        request
        for request in kitsu.requests_log(f"/api/edge/library-entries/{entry.kitsu_entry_id}")
        if request["method"] == "PATCH"
    ]
    assert [request["status"] for request in patches] == [200], patches
    assert kitsu.store.entry_by_id(entry.kitsu_entry_id).progress == entry.progress + 1


def test_the_rating_is_changed_through_the_edit_form(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    system = KitsuToken.objects.get(user=user).kitsu_rating_system
    entry = pick(user, status=WatchStatus.COMPLETED)
    score, label = next(
        (value, text) for value, text in reversed(score_choices(system)) if value != entry.score
    )
    enter_as(page, user)
    page.goto(f"{live_server.url}/library/")
    row = row_of(page, entry)

    row.locator("summary", has_text="Edit").click()
    row.get_by_label("Your rating").select_option(label=label)
    row.get_by_role("button", name=re.compile(r"^Save")).click()

    expect(row.locator("td[data-label=Score]")).to_have_text(score_label(score, system))
    expect(row.locator(".entry-edit")).not_to_have_attribute("open", "")  # a fresh row
    expect(row.locator(".kitsu-state")).to_have_attribute("data-state", "local")  # import only
    entry.refresh_from_db()
    assert entry.score == score
    page.reload()
    expect(row.locator("td[data-label=Score]")).to_have_text(score_label(score, system))


def test_an_entry_is_removed_after_the_confirm_dialog(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    entry = pick(user, status=WatchStatus.DROPPED)
    enter_as(page, user)
    page.goto(f"{live_server.url}/library/")
    count = page.locator("#library tbody tr").count()
    row = row_of(page, entry)

    row.locator("summary", has_text="Edit").click()
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("link", name=re.compile(r"^Remove")).click()

    expect(row).to_have_count(0)
    expect(page.locator("#library tbody tr")).to_have_count(count - 1)
    assert asked == [f"Remove {entry.anime} from your list?"]
    assert not LibraryEntry.objects.filter(pk=entry.pk).exists()
    page.reload()
    expect(page.locator("#library tbody tr").first).to_be_visible()
    expect(row).to_have_count(0)


def test_a_title_on_the_list_opens_its_anime_page(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    entry = pick(user, status=WatchStatus.WATCHING)
    enter_as(page, user)
    page.goto(f"{live_server.url}/library/")

    row_of(page, entry).get_by_role("link", name=entry.anime.title, exact=True).click()

    expect(page).to_have_url(f"{live_server.url}/anime/{entry.anime.kitsu_id}/")
    expect(page.get_by_role("heading", level=2)).to_have_text(entry.anime.title)
    card = page.locator("#your-entry")
    expect(card.get_by_role("heading", name="In your list")).to_be_visible()
    expect(card).to_contain_text(f"Progress{entry.progress}")
    expect(card).to_contain_text("Watching")


def test_the_list_is_sorted_and_filtered(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    enter_as(page, user)
    page.goto(f"{live_server.url}/library/")
    titles = page.locator("#library tbody tr td[data-label=Title] > a")
    by_title = list(
        LibraryEntry.objects.filter(user=user)
        .order_by("anime__title", "pk")
        .values_list("anime__title", flat=True)[:50]
    )
    expect(titles).to_have_text(by_title)

    controls = page.get_by_role("search", name="Filter the list")
    controls.get_by_label("Status").select_option(label="Completed")
    controls.get_by_label("Order").select_option(label="Score")
    controls.get_by_role("button", name="Show").click()

    expect(page).to_have_url(re.compile(r"/library/\?status=completed&q=&sort=-score$"))
    completed = list(
        LibraryEntry.objects.filter(user=user, status=WatchStatus.COMPLETED)
        .order_by(F("score").desc(nulls_last=True), "anime__title", "pk")
        .values_list("anime__title", flat=True)
    )
    assert 1 < len(completed) <= 50
    expect(titles).to_have_text(completed)
    expect(page.locator("#library td[data-label=Status]")).to_have_text(
        ["Completed"] * len(completed)
    )
    expect(page.get_by_text(f"{len(completed)} anime match.")).to_be_visible()
    # The controls keep what was chosen.
    expect(controls.get_by_label("Status")).to_have_value("completed")
    expect(controls.get_by_label("Order")).to_have_value("-score")

    # Words of a title (the English title counts too, as the page says).
    word = completed[0].split()[0]
    controls.get_by_label("Title contains").fill(word)
    controls.get_by_role("button", name="Show").click()
    matching = (
        LibraryEntry.objects.filter(user=user, status=WatchStatus.COMPLETED)
        .filter(Q(anime__title__icontains=word) | Q(anime__title_en__icontains=word))
        .order_by(F("score").desc(nulls_last=True), "anime__title", "pk")
        .values_list("anime__title", flat=True)
    )
    assert 0 < len(matching) < len(completed)
    expect(titles).to_have_text(list(matching))

    controls.get_by_label("Title contains").fill("no title is like this")
    controls.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No anime match.")).to_be_visible()
    expect(page.locator("#library")).to_have_count(0)


def test_on_a_phone_the_rows_are_cards_and_nothing_is_wider_than_the_screen(
    page: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    user = imported_user("demo")
    entry = pick(user, status=WatchStatus.WATCHING)
    enter_as(page, user)
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(f"{live_server.url}/library/")
    row = row_of(page, entry)
    expect(row).to_be_visible()

    # No table header; each row is a block of its own, with a border, its cells labelled.
    expect(page.locator("#library thead")).to_be_hidden()
    assert row.evaluate("tr => getComputedStyle(tr).display") == "block"
    assert row.evaluate("tr => getComputedStyle(tr).borderTopStyle") == "solid"
    label = row.locator("td[data-label=Status]").evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert label == '"Status: "'
    box = row.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # The edit form, opened in the card, fits too.
    row.locator("summary", has_text="Edit").click()
    expect(row.get_by_label("Notes")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_without_javascript_every_action_is_a_plain_form(
    page_without_js: Page, live_server: Any, enter_as: Any, imported_user: Any
) -> None:
    page = page_without_js
    user = imported_user("demo")
    entry = pick(user, status=WatchStatus.WATCHING, anime__episode_count__gt=F("progress") + 1)
    enter_as(page, user)
    listed = f"{live_server.url}/library/?sort=-progress"
    page.goto(listed)
    row = row_of(page, entry)

    row.get_by_role("button", name="+1").click()  # a form POST, then the list again
    expect(page).to_have_url(listed)
    expect(page.get_by_text(f"episode {entry.progress + 1} watched")).to_be_visible()
    expect(row).to_contain_text(f"{entry.progress + 1} / {entry.anime.episode_count}")

    row.locator("summary", has_text="Edit").click()
    row.get_by_role("link", name=re.compile("on its own page")).click()
    expect(page.get_by_role("heading", name=f"Edit {entry.anime}")).to_be_visible()
    page.get_by_label("Notes").fill("watched on the train")
    page.get_by_role("button", name=re.compile(r"^Save")).click()
    expect(page).to_have_url(listed)
    expect(page.get_by_text(f"{entry.anime} is saved.")).to_be_visible()
    assert LibraryEntry.objects.get(pk=entry.pk).notes == "watched on the train"

    row.locator("summary", has_text="Edit").click()
    row.get_by_role("link", name=re.compile("on its own page")).click()
    page.get_by_role("link", name=re.compile(r"^Remove")).click()
    page.get_by_role("button", name=f"Remove {entry.anime}").click()
    expect(page.get_by_text(f"{entry.anime} is removed from your list")).to_be_visible()
    assert not LibraryEntry.objects.filter(pk=entry.pk).exists()
