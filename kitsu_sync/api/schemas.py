"""The API's request and response bodies (their OpenAPI schemas come from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict

Status = Literal["watching", "completed", "on_hold", "dropped", "plan_to_watch"]


class KitsuStanding(Schema):
    state: Literal["in_step", "waiting", "sent", "failed", "local", "conflict"] = Field(
        description="in_step: Kitsu has it as Revenge does; waiting: a change waits to be "
        "sent; sent: Kitsu took the last change; failed: Kitsu refused it (see detail); local: "
        "import only, the change stays in Revenge; conflict: both sides changed it before the "
        "last sync (detail: what each had, and what won)."
    )
    detail: str


class EntryOut(Schema):
    kitsu_anime_id: int
    title: str
    episode_count: int | None
    status: Status
    progress: int
    score: int | None = Field(description="0..100; null: no rating")
    rewatching: bool
    rewatch_count: int
    notes: str
    private: bool
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    kitsu: KitsuStanding


class EntryPatch(Schema):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    status: Status | None = None
    progress: int | None = Field(None, ge=0, le=100_000)
    score: int | None = Field(None, ge=0, le=100, description="0..100; 0 or null clears it")
    rewatching: bool | None = None
    rewatch_count: int | None = Field(None, ge=0, le=50)
    notes: str | None = Field(None, max_length=10_000)
    private: bool | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class EntryCreate(Schema):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    kitsu_anime_id: int = Field(ge=1, le=2_000_000_000)
    status: Status = "plan_to_watch"


class LibraryPage(Schema):
    count: int
    page: int
    pages: int
    results: list[EntryOut]


class AnimeOut(Schema):
    kitsu_id: int
    title: str
    title_en: str
    episode_count: int | None
    subtype: str
    airing_status: str
    start_date: str | None
    poster_url: str
    in_list: bool = Field(description="The anime is in your list already.")


class ScrobbleIn(Schema):
    """The show (by any of its ids, else its title), and the episode watched."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    kitsu_id: int | None = Field(None, ge=1, le=2_000_000_000)
    mal_id: int | None = Field(None, ge=1, le=2_000_000_000, description="MyAnimeList anime id")
    anilist_id: int | None = Field(None, ge=1, le=2_000_000_000)
    anidb_id: int | None = Field(None, ge=1, le=2_000_000_000)
    tvdb_id: int | None = Field(
        None, ge=1, le=2_000_000_000, description="TheTVDB series id (with season)"
    )
    tmdb_id: int | None = Field(
        None, ge=1, le=2_000_000_000, description="TMDB TV series id (with season)"
    )
    tmdb_movie_id: int | None = Field(None, ge=1, le=2_000_000_000)
    imdb_id: str | None = Field(None, pattern=r"^tt[0-9]{1,12}$")
    season: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="Season number; 0: specials; none: the episode is absolute",
    )
    episode: int = Field(ge=1, le=100_000)
    title: str | None = Field(None, max_length=500, description="Used only when no id is given")


class Candidate(Schema):
    kitsu_id: int | None
    episode: int | None
    source: str


class ScrobbleOut(Schema):
    outcome: Literal["recorded", "repeated", "unchanged", "ignored", "unmatched"]
    reason: str
    kitsu_anime_id: int | None = None
    episode: int | None = None
    found_by: list[str] = []
    delivery: str = Field(
        "", description="queued for Kitsu / kept in Revenge (import only) / nothing to send"
    )
    entry: EntryOut | None = None
    unmatched_id: int | None = None
    candidates: list[Candidate] = []


class ProblemOut(Schema):
    """Every error: problem details (RFC 9457), `detail` saying what to do."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, str]] | None = Field(
        None, description="422 for the request's shape: each field and what is wrong with it"
    )
    field: str | None = Field(None, description="422 for an entry change: the field refused")


def with_problems(ok: dict[int, object], *statuses: int) -> dict[int, object]:
    """An endpoint's answers for OpenAPI: its own, and problems with these statuses (401 and
    500 for every endpoint)."""
    return {**ok, **dict.fromkeys((401, *statuses, 500), ProblemOut)}
