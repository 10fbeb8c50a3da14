"""The API's request and response bodies (their OpenAPI schemas come from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

Status = Literal["watching", "completed", "on_hold", "dropped", "plan_to_watch"]


class KitsuStanding(Schema):
    state: Literal["in_step", "waiting", "sent", "failed", "local"] = Field(
        description="in_step: Kitsu has it as Revenge does; waiting: a change waits to be "
        "sent; sent: Kitsu took the last change; failed: Kitsu refused it (see detail); local: "
        "import only, the change stays in Revenge."
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
    status: Status | None = None
    progress: int | None = Field(None, ge=0)
    score: int | None = Field(None, ge=0, le=100, description="0..100; 0 or null clears it")
    rewatching: bool | None = None
    rewatch_count: int | None = Field(None, ge=0, le=50)
    notes: str | None = Field(None, max_length=10_000)
    private: bool | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class EntryCreate(Schema):
    kitsu_anime_id: int = Field(ge=1)
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

    kitsu_id: int | None = Field(None, ge=1)
    mal_id: int | None = Field(None, ge=1, description="MyAnimeList anime id")
    anilist_id: int | None = Field(None, ge=1)
    anidb_id: int | None = Field(None, ge=1)
    tvdb_id: int | None = Field(None, ge=1, description="TheTVDB series id (with season)")
    tmdb_id: int | None = Field(None, ge=1, description="TMDB TV series id (with season)")
    tmdb_movie_id: int | None = Field(None, ge=1)
    imdb_id: str | None = Field(None, pattern=r"^tt[0-9]{1,12}$")
    season: int | None = Field(
        None, ge=0, description="Season number; 0: specials; none: the episode is absolute"
    )
    episode: int = Field(ge=1)
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
