"""Revenge's changes sent to Kitsu: one write per entry, no read before it.

Each write is `Push.attributes`, which Kitsu's validation accepts (progress capped at the
episode count, ratingTwenty 2..20 or null, rewatches as `reconsuming`). The HTTP writes happen
outside any transaction; Kitsu's answers to a batch are then stored in one short transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kitsu_sync.kitsu_api import KitsuError, KitsuUnauthorized, Resource
from kitsu_sync.mapping import MappingError, library_entry_fields
from kitsu_sync.plan import Push
from kitsu_sync.records import ErrorRecord, error_record
from kitsu_sync.services import library
from kitsu_sync.services.kitsu_errors import describe_sync_error
from kitsu_sync.services.tokens import KitsuAccess

# Kitsu's answer to a write links the entry to its anime only when asked to.
WRITE_INCLUDE = ("anime",)
# Answers stored per transaction; the sync's claim is renewed between batches.
PUSH_BATCH_SIZE = 50


@dataclass
class PushOutcome:
    """What sending a list of pushes did."""

    pushed: int = 0
    failed: int = 0  # entries Kitsu refused (or that could not be written at all)
    errors: list[ErrorRecord] = field(default_factory=list)
    # The reason of each refusal, by the anime's Kitsu id (not the writes Kitsu took).
    refused: dict[int, str] = field(default_factory=dict)
    # An error a later attempt may fix (Kitsu down, rate limited, the token refused) stopped
    # the sending; the entries not sent stay changed in Revenge, so the next sync sends them.
    stopped_by: Exception | None = None


def _send(access: KitsuAccess, push: Push, attributes: dict[str, Any]) -> Resource:
    if push.kitsu_entry_id is None:
        return access.client.create_library_entry(
            token=access.token,
            user_id=access.kitsu_user_id,
            anime_id=push.anime_kitsu_id,
            attributes=attributes,
            include=WRITE_INCLUDE,
        )
    return access.client.update_library_entry(
        token=access.token,
        entry_id=push.kitsu_entry_id,
        attributes=attributes,
        include=WRITE_INCLUDE,
    )


def _failure(push: Push, reason: str) -> ErrorRecord:
    return error_record(
        reason, entry=push.kitsu_entry_id, anime=push.anime_kitsu_id, title=push.title
    )


def _refused(outcome: PushOutcome, push: Push, reason: str) -> None:
    outcome.failed += 1
    outcome.errors.append(_failure(push, reason))
    outcome.refused[push.anime_kitsu_id] = reason


def _send_one(access: KitsuAccess, push: Push, outcome: PushOutcome) -> dict[str, Any] | None:
    """Write one entry; Kitsu's answer as Revenge fields, or None when it was not written.
    An error a retry may fix propagates."""
    title = push.title or "An entry"
    try:
        resource = _send(access, push, push.attributes())
    except MappingError as exc:
        _refused(outcome, push, f"{title} could not be sent to Kitsu: {exc}")
        return None
    except KitsuError as exc:
        if exc.retryable or isinstance(exc, KitsuUnauthorized):
            raise
        _refused(outcome, push, f"{title}: {describe_sync_error(exc)}")
        return None
    outcome.pushed += 1
    try:
        return library_entry_fields(resource)
    except MappingError as exc:
        outcome.errors.append(
            _failure(
                push,
                f"Kitsu took the change to {push.title or 'an entry'} but its answer could not "
                f"be read ({exc}); the next sync compares both sides again.",
            )
        )
        return None


def send_pushes(
    access: KitsuAccess,
    pushes: Sequence[Push],
    *,
    direction: str,
    after_batch: Callable[[], None] | None = None,
) -> PushOutcome:
    """Send each push to Kitsu and store its answer; a refused entry is recorded and skipped."""
    outcome = PushOutcome()
    for start in range(0, len(pushes), PUSH_BATCH_SIZE):
        written: list[tuple[Push, dict[str, Any]]] = []
        try:
            for push in pushes[start : start + PUSH_BATCH_SIZE]:
                answer = _send_one(access, push, outcome)
                if answer is not None:
                    written.append((push, answer))
        except Exception as exc:  # handed to the caller, with what was sent before it
            outcome.stopped_by = exc
        finally:
            # What Kitsu already took is stored even when a later write failed.
            library.store_written(written, direction=direction)
        if outcome.stopped_by is not None:
            return outcome
        if after_batch is not None:
            after_batch()
    return outcome
