"""POST /scrobble: "this user watched episode N of this show"."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Status

from kitsu_sync.api.auth import key_of
from kitsu_sync.api.library import entry_out, one_out
from kitsu_sync.api.problems import Problem
from kitsu_sync.api.schemas import ScrobbleIn, ScrobbleOut, with_problems
from kitsu_sync.media_servers import MediaIds
from kitsu_sync.models import IdempotentRequest
from kitsu_sync.services import entries
from kitsu_sync.services.entries import WAITING
from kitsu_sync.services.scrobble import IDEMPOTENCY_KEPT, Outcome, Scrobbled, Watch, scrobble

router = Router(tags=["scrobbling"])
MAX_IDEMPOTENCY_KEY = 200


def _entry_out(done: Scrobbled) -> dict[str, Any] | None:
    if done.entry is None:
        return None
    if done.queued:  # just queued: no need to ask where it stands
        return entry_out(done.entry, entries.Standing(entries.KitsuState.WAITING, WAITING))
    return one_out(done.entry)


def scrobbled_out(done: Scrobbled) -> dict[str, Any]:
    """The answer to a scrobble (the API's and the webhooks')."""
    if done.outcome in (Outcome.RECORDED, Outcome.REPEATED, Outcome.UNCHANGED):
        delivery = (
            "queued for Kitsu"
            if done.queued
            else "nothing to send"
            if done.outcome != Outcome.RECORDED
            else "kept in Revenge (import only, or no Kitsu account linked)"
        )
    else:
        delivery = ""
    return {
        "outcome": done.outcome,
        "reason": done.reason,
        "kitsu_anime_id": done.kitsu_id,
        "episode": done.episode,
        "found_by": list(done.how),
        "delivery": delivery,
        "entry": _entry_out(done),
        "unmatched_id": done.unmatched.pk if done.unmatched is not None else None,
        "candidates": list(done.candidates),
    }


def _watch(body: ScrobbleIn) -> Watch:
    ids = MediaIds(
        kitsu=body.kitsu_id,
        mal=body.mal_id,
        anilist=body.anilist_id,
        anidb=body.anidb_id,
        tvdb=body.tvdb_id,
        tmdb_tv=body.tmdb_id,
        tmdb_movie=body.tmdb_movie_id,
        imdb=body.imdb_id,
    )
    if not ids and not (body.title or "").strip():
        raise Problem(
            400,
            "The show is not named",
            "Name the show by at least one id (kitsu_id, mal_id, anilist_id, anidb_id, tvdb_id "
            "with season, tmdb_id with season, tmdb_movie_id, imdb_id) or, failing that, title.",
        )
    return Watch(ids, body.episode, body.season, (body.title or "").strip(), "api")


@router.post(
    "/scrobble",
    response=with_problems({200: ScrobbleOut}, 400, 422),
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
                "description": "A retry with the same key (within 24 hours) gets the first "
                "answer again and changes nothing.",
            }
        ]
    },
    summary="Record a watched episode",
    description=(
        "Resolves the show and episode to a Kitsu anime and episode (docs/resolve.md) and "
        "records it: progress moves on (never back), a finished show counts a rewatch. With an "
        "`Idempotency-Key` header, a retry gets the first answer again and changes nothing."
    ),
)
def scrobble_episode(request: HttpRequest, body: ScrobbleIn) -> Any:
    user_id = key_of(request).user_id
    watch = _watch(body)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise Problem(400, "The Idempotency-Key is too long", "Use at most 200 characters.")
    if key:
        kept_since = timezone.now() - IDEMPOTENCY_KEPT
        earlier = IdempotentRequest.objects.filter(
            user_id=user_id, key=key, created_at__gte=kept_since
        ).first()
        if earlier is not None:
            return Status(earlier.status, earlier.body)
        # An answer older than that is forgotten (beat prunes it): the key is free again.
        IdempotentRequest.objects.filter(user_id=user_id, key=key).delete()
    answer = scrobbled_out(scrobble(user_id=user_id, watch=watch))
    if key:
        try:
            with transaction.atomic():
                IdempotentRequest.objects.create(user_id=user_id, key=key, status=200, body=answer)
        except IntegrityError:
            # The same key, sent twice at once: the other answer was stored first.
            earlier = IdempotentRequest.objects.get(user_id=user_id, key=key)
            return Status(earlier.status, earlier.body)
    return answer
