from __future__ import annotations

from django import forms

from kitsu_sync.models import WatchStatus
from kitsu_sync.services.linking import login_problem, password_problem


class PasswordLinkForm(forms.Form):
    """Kitsu credentials for the password-grant link; the password is never rendered back."""

    login = forms.CharField(
        label="Kitsu email or profile URL name",
        help_text=(
            "The email you sign in to Kitsu with, or the name at the end of your profile URL "
            "(kitsu.app/users/name). Not your display name."
        ),
        error_messages={"required": "Enter the email or profile URL name you use on Kitsu."},
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Kitsu password",
        help_text="Sent once to Kitsu to get a token; Revenge never stores it.",
        strip=False,
        error_messages={"required": "Enter your Kitsu password."},
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "current-password"}),
    )

    def clean_login(self) -> str:
        login = self.cleaned_data["login"]
        problem = login_problem(login)
        if problem:
            raise forms.ValidationError(problem)
        return login

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        problem = password_problem(password)
        if problem:
            raise forms.ValidationError(problem)
        return password


class UnlinkForm(forms.Form):
    KEEP = "keep"
    DELETE = "delete"

    library = forms.ChoiceField(
        label="Your imported anime list",
        choices=[
            (KEEP, "Keep it in Revenge"),
            (DELETE, "Delete it from Revenge (your list on Kitsu is not touched)"),
        ],
        initial=KEEP,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose whether to keep or delete your imported list."},
    )

    @property
    def delete_library(self) -> bool:
        return self.cleaned_data["library"] == self.DELETE


class LibraryFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "All"), *WatchStatus.choices],
        required=False,
    )
