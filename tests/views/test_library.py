"""The list page: sorted, filtered and searched, each entry edited where it is shown (a plain
form POST, or htmx swapping the row), +1, removed after a confirmation, added, sent again."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kitsu_sync.models import Anime, KitsuOutbox, KitsuToken, LibraryEntry, WatchStatus
from kitsu_sync.services.watch import record_watch_progress
from tests.web_support import LIBRARY, add_entries, linked

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def entry_of(user: Any, kitsu_id: int) -> LibraryEntry:
    return LibraryEntry.objects.select_related("anime").get(user=user, anime__kitsu_id=kitsu_id)


def titles(response: Any) -> list[str]:
    return [row["entry"].anime.title for row in response.context["rows"]]


@pytest.fixture
def shelf(signed_in: Any) -> Any:
    """Four entries with different titles, scores, progress and update times."""
    add_entries(signed_in, 4)
    for number, (score, progress) in enumerate([(40, 3), (None, 9), (90, 1), (70, 12)]):
        LibraryEntry.objects.filter(user=signed_in, anime__kitsu_id=100 + number).update(
            score=score, progress=progress
        )
    LibraryEntry.objects.filter(user=signed_in, anime__kitsu_id=101).update(status="completed")
    Anime.objects.filter(kitsu_id=102).update(title_en="Special Title")
    return signed_in


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["Anime 000", "Anime 001", "Anime 002", "Anime 003"]),
        ({"sort": "-score"}, ["Anime 002", "Anime 003", "Anime 000", "Anime 001"]),
        ({"sort": "-progress"}, ["Anime 003", "Anime 001", "Anime 000", "Anime 002"]),
        ({"status": "completed"}, ["Anime 001"]),
        ({"q": "002"}, ["Anime 002"]),
        ({"q": "special"}, ["Anime 002"]),  # the English title counts too
        ({"q": "nothing like it"}, []),
    ],
)
def test_the_list_is_sorted_filtered_and_searched(
    client: Client, shelf: Any, query: dict[str, str], expected: list[str]
) -> None:
    response = client.get(LIBRARY, query)

    assert response.status_code == 200
    assert titles(response) == expected


def test_the_latest_updated_come_first_when_asked(client: Client, shelf: Any) -> None:
    LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=102).update(notes="touched")
    entry = entry_of(shelf, 102)
    entry.save()  # updated_at moves

    assert titles(client.get(LIBRARY, {"sort": "-updated"}))[0] == "Anime 002"


def test_a_page_of_the_list_costs_the_same_queries_with_5000_entries_as_with_50(
    client: Client, signed_in: Any
) -> None:
    linked(signed_in)
    add_entries(signed_in, 50)
    with CaptureQueriesContext(connection) as small:
        assert client.get(LIBRARY).status_code == 200

    add_entries_fast(signed_in, 5_000)
    with CaptureQueriesContext(connection) as large:
        response = client.get(LIBRARY, {"page": 7, "sort": "-score"})

    assert response.status_code == 200
    assert len(response.context["rows"]) == 50
    assert len(large.captured_queries) == len(small.captured_queries), [
        q["sql"][:80] for q in large.captured_queries
    ]


def add_entries_fast(user: Any, count: int) -> None:
    """`count` entries in two statements (the list page's own cost is what is measured)."""
    start = Anime.objects.count() + 10_000
    anime = Anime.objects.bulk_create(
        Anime(kitsu_id=start + n, title=f"Bulk {n:05d}", episode_count=24) for n in range(count)
    )
    LibraryEntry.objects.bulk_create(
        LibraryEntry(user=user, anime=one, status=WatchStatus.WATCHING, progress=n % 24)
        for n, one in enumerate(anime)
    )


def test_an_entry_is_edited_from_the_list_and_the_page_comes_back(
    client: Client, shelf: Any
) -> None:
    entry = entry_of(shelf, 100)
    back = f"{LIBRARY}?sort=-score&page=1"

    response = client.post(
        "/library/100/edit/",
        {
            f"e{entry.pk}-status": "on_hold",
            f"e{entry.pk}-progress": "5",
            f"e{entry.pk}-score": "80",
            f"e{entry.pk}-rewatch_count": "0",
            f"e{entry.pk}-notes": "slow middle",
            f"e{entry.pk}-started_at": "2025-01-02",
            "next": back,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == back
    entry.refresh_from_db()
    assert (entry.status, entry.progress, entry.score, entry.notes) == (
        "on_hold",
        5,
        80,
        "slow middle",
    )
    assert entry.started_at.date().isoformat() == "2025-01-02"
    assert entry.local_updated_at is not None


def test_an_edit_sent_by_htmx_answers_the_row_with_its_new_state(
    client: Client, shelf: Any, settings: Any, deliveries: list[Any]
) -> None:
    linked(shelf)
    settings.KITSU_SYNC_DIRECTION = "two_way"
    entry = entry_of(shelf, 100)
    form = {f"e{entry.pk}-{name}": value for name, value in _as_posted(entry).items()}
    form[f"e{entry.pk}-progress"] = "4"

    response = client.post("/library/100/edit/", form, headers=HTMX)

    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith('<tr class="entry"')
    assert "4 / 12" in row
    assert 'data-state="waiting"' in row
    assert KitsuOutbox.objects.filter(user=shelf).count() == 1


def test_the_list_holds_no_edit_form_until_a_rows_edit_opens(client: Client, shelf: Any) -> None:
    entry = entry_of(shelf, 100)
    back = f"{LIBRARY}?sort=-score"

    page = client.get(back).content.decode()
    form = client.get("/library/100/edit/", {"next": back}, headers=HTMX).content.decode()

    assert f'name="e{entry.pk}-status"' not in page
    assert 'hx-get="/library/100/edit/?shown_as=row&amp;next=/library/%3Fsort%3D-score"' in page
    assert 'href="/library/100/edit/?next=/library/%3Fsort%3D-score"' in page  # without JS
    assert form.lstrip().startswith("<form")
    assert f'name="e{entry.pk}-status"' in form
    assert 'hx-post="/library/100/edit/"' in form
    assert '<input type="hidden" name="next" value="/library/?sort=-score">' in form


def test_without_javascript_edit_is_a_page_of_its_own(client: Client, shelf: Any) -> None:
    entry = entry_of(shelf, 100)

    page = client.get("/library/100/edit/", {"next": "https://evil.example/"}).content.decode()

    assert "<h2>Edit Anime 000</h2>" in page
    assert f'name="e{entry.pk}-status"' in page
    assert "hx-post" not in page  # a plain form: nothing to swap on this page
    assert "evil.example" not in page
    assert '<a href="/library/">Back to your list</a>' in page


class _Fields(HTMLParser):
    """What a browser sends for the forms of an HTML fragment: inputs, the selected option of
    each select, textareas (their first line break dropped, line breaks as CRLF)."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        name = found.get("name") or ""
        if tag == "input" and found.get("type") != "checkbox":
            self.values[name] = found.get("value") or ""
        elif tag == "input" and "checked" in found:
            self.values[name] = "on"
        elif tag == "select":
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in found:
            self.values[self._select] = found.get("value") or ""
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = self.values[self._textarea]
            text = text[1:] if text.startswith("\n") else text
            self.values[self._textarea] = text.replace("\n", "\r\n")
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


def form_as_shown(client: Client, kitsu_id: int) -> dict[str, str]:
    """The entry's edit form as the list's Edit opens it, filled in as shown."""
    parser = _Fields()
    parser.feed(client.get(f"/library/{kitsu_id}/edit/", headers=HTMX).content.decode())
    return parser.values


def test_saving_one_field_leaves_a_rating_between_choices_alone(client: Client, shelf: Any) -> None:
    linked(shelf)
    KitsuToken.objects.filter(user=shelf).update(kitsu_rating_system="simple")
    LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=100).update(score=55)
    entry = entry_of(shelf, 100)
    form = form_as_shown(client, 100)
    form[f"e{entry.pk}-progress"] = "4"

    client.post("/library/100/edit/", form)

    entry = entry_of(shelf, 100)
    assert (entry.progress, entry.score) == (4, 55)


def test_a_form_opened_before_a_scrobble_does_not_take_the_episode_back(
    client: Client, shelf: Any
) -> None:
    entry = entry_of(shelf, 100)
    form = form_as_shown(client, 100)  # progress 3
    record_watch_progress(user_id=shelf.pk, anime_kitsu_id=100, episode=4)
    form[f"e{entry.pk}-notes"] = "a note"

    client.post("/library/100/edit/", form)

    entry = entry_of(shelf, 100)
    assert (entry.progress, entry.notes) == (4, "a note")


def test_notes_saved_untouched_stay_as_they_were(client: Client, shelf: Any) -> None:
    LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=100).update(
        notes="line one\nline two\n", local_updated_at=None
    )
    entry = entry_of(shelf, 100)
    form = form_as_shown(client, 100)
    assert form[f"e{entry.pk}-notes"] == "line one\r\nline two\r\n"  # as a browser sends them

    client.post("/library/100/edit/", form)

    entry = entry_of(shelf, 100)
    assert (entry.notes, entry.local_updated_at) == ("line one\nline two\n", None)


def test_a_finish_on_the_day_of_the_start_is_accepted(client: Client, shelf: Any) -> None:
    LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=100).update(
        started_at=datetime(2024, 1, 5, 15, 0, tzinfo=UTC)
    )
    entry = entry_of(shelf, 100)
    form = form_as_shown(client, 100)
    form[f"e{entry.pk}-finished_at"] = "2024-01-05"
    form[f"e{entry.pk}-status"] = "completed"

    row = client.post("/library/100/edit/", form, headers=HTMX).content.decode()

    assert 'role="alert"' not in row
    entry = entry_of(shelf, 100)
    assert (entry.status, entry.finished_at.date().isoformat()) == ("completed", "2024-01-05")


def test_a_refused_edit_keeps_what_was_typed(client: Client, shelf: Any) -> None:
    entry = entry_of(shelf, 100)
    form = form_as_shown(client, 100)
    form[f"e{entry.pk}-progress"] = "13"  # the show has 12
    form[f"e{entry.pk}-notes"] = "typed before the mistake"

    row = client.post("/library/100/edit/", form, headers=HTMX).content.decode()

    assert "0 to 12" in row
    assert "typed before the mistake</textarea>" in row
    assert entry_of(shelf, 100).notes == ""


def test_plus_one_after_setting_progress_back_counts_again(client: Client, shelf: Any) -> None:
    client.post("/library/100/plus-one/")  # 3 -> 4
    LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=100).update(progress=3)

    row = client.post("/library/100/plus-one/", headers=HTMX).content.decode()

    assert entry_of(shelf, 100).progress == 4
    assert 'role="alert"' not in row


def test_an_anime_that_cannot_be_added_answers_htmx_with_the_form_and_why(
    client: Client, signed_in: Any, kitsu: Any
) -> None:
    response = client.post(
        "/library/add/", {"kitsu_anime_id": "99999999", "status": "watching"}, headers=HTMX
    )

    assert response.status_code == 200
    form = response.content.decode()
    assert form.lstrip().startswith("<form")
    assert "Kitsu has no anime 99999999." in form
    assert not LibraryEntry.objects.filter(user=signed_in).exists()


def test_send_again_with_htmx_says_so_in_the_row_and_leaves_no_message(
    client: Client, shelf: Any
) -> None:
    row = client.post("/library/100/resend/", headers=HTMX).content.decode()

    assert "Nothing of Anime 000 is waiting to be sent again." in row
    assert "waiting to be sent again" not in client.get(LIBRARY).content.decode()


def _as_posted(entry: LibraryEntry) -> dict[str, str]:
    return {
        "status": entry.status,
        "progress": str(entry.progress),
        "score": str(entry.score or ""),
        "rewatch_count": str(entry.rewatch_count),
        "notes": entry.notes,
    }


def test_a_value_kitsu_would_refuse_is_explained_in_the_row(client: Client, shelf: Any) -> None:
    entry = entry_of(shelf, 100)
    form = {f"e{entry.pk}-{name}": value for name, value in _as_posted(entry).items()}
    form[f"e{entry.pk}-progress"] = "13"  # the show has 12

    row = client.post("/library/100/edit/", form, headers=HTMX).content.decode()

    assert 'role="alert"' in row
    assert "0 to 12" in row
    assert entry_of(shelf, 100).progress == 3


def test_plus_one_watches_the_next_episode_and_completes_the_show(
    client: Client, shelf: Any
) -> None:
    LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=100).update(progress=11)

    client.post("/library/100/plus-one/")
    entry = entry_of(shelf, 100)
    assert (entry.progress, entry.status) == (12, "completed")
    assert entry.finished_at is not None

    response = client.post("/library/100/plus-one/", follow=True)
    assert "all 12 episodes are watched" in response.content.decode()
    assert entry_of(shelf, 100).progress == 12


def test_removing_asks_first_then_removes(client: Client, shelf: Any) -> None:
    page = client.get("/library/100/remove/").content.decode()
    assert "Remove Anime 000 from your list?" in page
    assert "not touched" in page  # import only
    assert LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=100).exists()

    response = client.post("/library/100/remove/", {"next": LIBRARY}, follow=True)

    assert "Anime 000 is removed from your list" in response.content.decode()
    assert not LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=100).exists()


def test_removing_with_htmx_answers_nothing_so_the_row_goes(client: Client, shelf: Any) -> None:
    response = client.post("/library/101/remove/", headers=HTMX)

    assert (response.status_code, response.content) == (200, b"")
    assert not LibraryEntry.objects.filter(user=shelf, anime__kitsu_id=101).exists()


def test_another_users_entry_cannot_be_edited_or_removed(
    client: Client, shelf: Any, make_user: Any
) -> None:
    client.force_login(make_user())

    assert client.post("/library/100/plus-one/").status_code == 404
    assert client.post("/library/100/remove/").status_code == 404
    assert client.post("/library/100/edit/", {}).status_code == 404
    assert client.get("/library/100/edit/").status_code == 404
    assert entry_of(shelf, 100).progress == 3


def test_a_next_address_elsewhere_is_not_followed(client: Client, shelf: Any) -> None:
    response = client.post("/library/100/plus-one/", {"next": "https://evil.example/"})

    assert response["Location"] == LIBRARY


@pytest.mark.parametrize(
    ("system", "offered"),
    [
        ("simple", ["Awful", "Meh", "Good", "Great"]),
        ("regular", ["0.5 stars", "1 stars", "5 stars"]),
        ("advanced", ["1", "1.5", "10"]),
    ],
)
def test_ratings_are_offered_as_the_user_rates_on_kitsu(
    client: Client, shelf: Any, system: str, offered: list[str]
) -> None:
    linked(shelf)
    KitsuToken.objects.filter(user=shelf).update(kitsu_rating_system=system)

    page = client.get("/library/100/edit/", headers=HTMX).content.decode()

    for label in offered:
        assert f">{label}</option>" in page


def test_adding_an_anime_puts_it_in_the_list(client: Client, signed_in: Any) -> None:
    Anime.objects.create(kitsu_id=7, title="Seven", episode_count=10)

    response = client.post(
        "/library/add/", {"kitsu_anime_id": "7", "status": "watching"}, follow=True
    )

    assert "Seven is in your list now (Watching)" in response.content.decode()
    assert entry_of(signed_in, 7).status == WatchStatus.WATCHING
    again = client.post(
        "/library/add/", {"kitsu_anime_id": "7", "status": "completed"}, headers=HTMX
    )
    assert "In your list" in again.content.decode()
    assert entry_of(signed_in, 7).status == WatchStatus.WATCHING
