from __future__ import annotations

from django import forms

from kitsu_sync.models import MediaServerKind, WatchStatus, validate_server_url
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


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=100,
        help_text="What will use it, such as “Jellyfin at home” or “my script”.",
        error_messages={"required": "Give the key a name, so that you can tell keys apart."},
    )
    server_users = forms.CharField(
        label="Media-server users it may act for",
        required=False,
        help_text="Comma-separated user names on your media server. Empty: any user of the "
        "server (fine when only you use it).",
    )

    def clean_server_users(self) -> list[str]:
        return [
            name.strip() for name in self.cleaned_data["server_users"].split(",") if name.strip()
        ]


class MediaServerForm(forms.Form):
    kind = forms.ChoiceField(label="Server", choices=MediaServerKind.choices)
    name = forms.CharField(label="Name", max_length=100, initial="Home")
    url = forms.CharField(
        label="Address",
        max_length=500,
        help_text="As Revenge reaches it, such as http://192.168.1.20:8096 or http://jellyfin:8096.",
        validators=[validate_server_url],
    )
    api_key = forms.CharField(
        label="API key (Plex: token)",
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted; used only to ask the server which show an episode is.",
    )
    server_user_id = forms.CharField(
        label="Your user id on the server",
        required=False,
        max_length=64,
        help_text="Jellyfin and Emby: whose view of the library to ask for (Emby needs it).",
    )


class MatchForm(forms.Form):
    kitsu_id = forms.IntegerField(label="Kitsu anime id", min_value=1)
    episode_offset = forms.IntegerField(
        label="Episode offset",
        initial=0,
        required=False,
        help_text="Added to the server's episode number (-12: the server's episode 13 is 1).",
    )
    every_season = forms.BooleanField(label="For every season of this show", required=False)
