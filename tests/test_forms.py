from __future__ import annotations

import pytest

from kitsu_sync.forms import LibraryFilterForm, PasswordLinkForm, UnlinkForm


def test_the_password_form_accepts_a_login_and_a_password_with_spaces():
    form = PasswordLinkForm({"login": "  demo@example.test ", "password": " p&ss=w0rd +%ü "})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"login": "demo@example.test", "password": " p&ss=w0rd +%ü "}


def test_the_password_is_never_rendered_back_into_the_form():
    form = PasswordLinkForm({"login": "demo@example.test", "password": "s3cret-Pa55"})
    form.is_valid()
    form.add_error(None, "Kitsu rejected the login")
    html = str(form)
    assert "s3cret-Pa55" not in html
    assert 'value="demo@example.test"' in html
    assert 'autocomplete="current-password"' in html


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"login": "", "password": "pw"}, "login", "Enter the email or profile URL name"),
        ({"login": "demo", "password": ""}, "password", "Enter your Kitsu password"),
        ({"login": "d" * 1100, "password": "pw"}, "login", "longer than 1 KB"),
        ({"login": "demo", "password": "p" * 1100}, "password", "longer than 1 KB"),
        ({"login": "de\nmo", "password": "pw"}, "login", "control characters"),
        ({"login": "demo", "password": "pw\r\n"}, "password", "control characters"),
    ],
)
def test_the_password_form_refuses_input_kitsu_would_never_accept(data, field, message):
    form = PasswordLinkForm(data)
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


def test_the_login_help_says_it_is_not_the_display_name():
    assert "Not your display name" in str(PasswordLinkForm()["login"].help_text)


@pytest.mark.parametrize(("choice", "delete"), [("keep", False), ("delete", True)])
def test_the_unlink_form_says_whether_to_delete_the_list(choice, delete):
    form = UnlinkForm({"library": choice})
    assert form.is_valid()
    assert form.delete_library is delete


def test_the_unlink_form_needs_a_choice():
    form = UnlinkForm({"library": "maybe"})
    assert not form.is_valid()


def test_the_library_filter_knows_revenge_statuses_only():
    assert LibraryFilterForm({"status": "plan_to_watch"}).is_valid()
    assert not LibraryFilterForm({"status": "planned"}).is_valid()  # Kitsu's name, not ours
    assert LibraryFilterForm({}).is_valid()
