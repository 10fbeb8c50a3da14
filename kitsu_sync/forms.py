from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django import forms
from django.db.models import F

from kitsu_sync.mapping import score_choices
from kitsu_sync.models import LibraryEntry, MediaServerKind, WatchStatus, validate_server_url
from kitsu_sync.services.entries import EDITABLE
from kitsu_sync.services.linking import login_problem, password_problem
from kitsu_sync.services.metadata import SEASONS
from kitsu_sync.services.notifications import apprise_url_problem


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
    """The list page's controls: a status, text within titles, an order."""

    SORTS = {
        "title": ("anime__title", "pk"),
        "-updated": ("-updated_at", "pk"),
        "-score": (F("score").desc(nulls_last=True), "anime__title", "pk"),
        "-progress": ("-progress", "anime__title", "pk"),
    }

    status = forms.ChoiceField(
        label="Status", choices=[("", "All"), *WatchStatus.choices], required=False
    )
    q = forms.CharField(label="Title contains", required=False, max_length=100)
    sort = forms.ChoiceField(
        label="Order",
        choices=[
            ("title", "Title"),
            ("-updated", "Last updated"),
            ("-score", "Score"),
            ("-progress", "Progress"),
        ],
        required=False,
    )

    def ordering(self) -> tuple[object, ...]:
        sort = self.cleaned_data.get("sort") if self.is_valid() else ""
        return self.SORTS.get(sort or "title", self.SORTS["title"])


class EntryForm(forms.Form):
    """An entry as the user edits it; the score is offered the way the user rates on Kitsu.

    Each field also carries, hidden, the value the form showed: only what the person changed
    is saved, so a form opened before a scrobble does not take the episode back, and a rating
    shown at the nearest choice of the user's rating system is not rewritten to it.
    """

    status = forms.ChoiceField(label="Status", choices=WatchStatus.choices)
    progress = forms.IntegerField(label="Episodes watched", min_value=0, max_value=100_000)
    score = forms.TypedChoiceField(
        label="Your rating", coerce=int, empty_value=None, required=False
    )
    rewatching = forms.BooleanField(label="Rewatching", required=False)
    rewatch_count = forms.IntegerField(label="Times rewatched", min_value=0, max_value=50)
    notes = forms.CharField(
        label="Notes",
        required=False,
        max_length=10_000,
        strip=False,  # the notes as written, trailing line breaks included
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    private = forms.BooleanField(label="Private (only you see it on Kitsu)", required=False)
    started_at = forms.DateField(
        label="Started", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    finished_at = forms.DateField(
        label="Finished", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, rating_system: str = "", prefix: str = "", **kwargs: Any):
        super().__init__(*args, prefix=prefix or None, **kwargs)
        self.fields["score"].choices = [("", "No rating"), *score_choices(rating_system)]
        for field in self.fields.values():
            field.show_hidden_initial = True

    def clean_notes(self) -> str:
        # Browsers send line breaks as CRLF; Kitsu and Revenge keep them as LF.
        return self.cleaned_data["notes"].replace("\r\n", "\n")

    @classmethod
    def of(cls, entry: LibraryEntry, *, rating_system: str, prefix: str = "") -> EntryForm:
        initial = {name: getattr(entry, name) for name in EDITABLE}
        for moment in ("started_at", "finished_at"):
            initial[moment] = initial[moment].date() if initial[moment] else None
        # A score between the user's choices is shown at the nearest one Kitsu would show.
        choices = [score for score, _ in score_choices(rating_system)]
        if entry.score:
            initial["score"] = min(choices, key=lambda choice: abs(choice - entry.score))
        return cls(initial=initial, rating_system=rating_system, prefix=prefix)

    def changes(self, entry: LibraryEntry) -> dict[str, Any]:
        """The values the person changed on the form that differ from the entry (dates as
        midnight UTC). A form posted without the shown values counts every field as changed."""
        values = {name: self.cleaned_data[name] for name in self.changed_data}
        for moment in ("started_at", "finished_at"):
            if moment not in values:
                continue
            day = values[moment]
            current = getattr(entry, moment)
            if day is not None and current is not None and current.date() == day:
                values[moment] = current  # the same day: keep the stored time
            elif day is not None:
                values[moment] = datetime.combine(day, time(), tzinfo=UTC)
        return {name: value for name, value in values.items() if getattr(entry, name) != value}


class AddForm(forms.Form):
    kitsu_anime_id = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    status = forms.ChoiceField(
        label="Add as", choices=WatchStatus.choices, initial=WatchStatus.PLAN_TO_WATCH
    )


class SeasonForm(forms.Form):
    season = forms.ChoiceField(
        label="Season", choices=[(name, name.title()) for name in SEASONS], required=False
    )
    year = forms.IntegerField(label="Year", min_value=1907, max_value=2100, required=False)


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


class NotificationForm(forms.Form):
    """The user's Apprise URL: where notices go besides the dashboard (stored encrypted)."""

    apprise_url = forms.CharField(
        label="Apprise URL",
        required=False,
        max_length=2000,
        # It holds the channel's secrets: never written back into the page.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="One URL in Apprise's format, such as tgram://bottoken/ChatID, "
        "ntfys://ntfy.sh/your-topic or discord://webhook_id/webhook_token. Stored encrypted.",
    )
    remove = forms.BooleanField(label="Send notices to the dashboard only", required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("remove"):
            cleaned["apprise_url"] = ""
            return cleaned
        url = (cleaned.get("apprise_url") or "").strip()
        if not url:
            self.add_error("apprise_url", "Paste an Apprise URL, or tick “dashboard only”.")
        elif problem := apprise_url_problem(url):
            self.add_error("apprise_url", problem)
        cleaned["apprise_url"] = url
        return cleaned
