"""Library sync orchestration: who syncs when, one sync per user, and what each run did.

`request_sync` queues a sync (after the transaction commits) unless one is already queued or
running; `run_sync` does it in the calling process; `dispatch_due_syncs` is what Celery beat
runs every few minutes. One sync per user at a time, across every worker, is a compare-and-swap
claim on `KitsuSyncState.sync_claimed_until` that expires on its own, so a killed worker
cannot block a user for longer than `CLAIM_TTL`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from kitsu_sync.kitsu_api import (
    Document,
    KitsuBadRequest,
    KitsuClient,
    KitsuError,
    KitsuUnauthorized,
)
from kitsu_sync.kitsu_client import get_kitsu_client
from kitsu_sync.mapping import LIBRARY_FIELDSETS
from kitsu_sync.models import (
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    SyncOutcome,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from kitsu_sync.services import exporter, importer, tokens
from kitsu_sync.services.merge import IMPORT_ONLY
from kitsu_sync.services.session import SyncSession, describe_kitsu_error

logger = logging.getLogger(__name__)

# A claim lasts this long and is renewed after every page and every batch of writes.
CLAIM_TTL = timedelta(minutes=10)
# filter[since] looks back this far before the cursor, in case Kitsu commits an older
# updatedAt after a newer one.
CURSOR_OVERLAP = timedelta(minutes=5)
# Entries asked for by id in one request (their ids travel in the query string).
ENTRIES_BY_ID_BATCH = 100
# After a failed sync the next scheduled attempt comes sooner than a full interval.
RETRY_FAILED_AFTER = timedelta(hours=1)
# Each user's schedule is shifted by a fixed share (up to this fraction) of the interval, so
# that users linked at the same moment do not all sync at the same moment forever after.
SCHEDULE_SPREAD = 0.1

_STATUS_FOR_OUTCOME = {
    SyncOutcome.SUCCESS: SyncStatus.SUCCESS,
    SyncOutcome.PARTIAL: SyncStatus.PARTIAL,
    SyncOutcome.FAILED: SyncStatus.FAILED,
}

ProgressCallback = Callable[[int, int | None], None]


class SyncBusy(Exception):
    """Another sync of this user's library holds the claim; try again later."""

    retryable = True


class SyncClaimLost(Exception):
    """This sync's claim expired and another sync took over; it stops without writing more."""


# --- scheduling -------------------------------------------------------------------------------


def queued_expiry() -> timedelta:
    """How long a queued sync whose task never started (a lost message) blocks a new request:
    the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT), after which Redis would have
    delivered the message again; an hour in embedded mode, which has none."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}
    return timedelta(seconds=options.get("visibility_timeout", 3600))


def schedule_offset(user_id: int, interval: timedelta) -> timedelta:
    """A fixed, per-user share of the interval (the same in every process and every run)."""
    digest = hashlib.sha256(f"kitsu-sync:{user_id}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return interval * SCHEDULE_SPREAD * fraction


def next_sync_time(*, user_id: int, now: datetime, failed: bool = False) -> datetime:
    interval = settings.KITSU_SYNC_INTERVAL
    wait = min(interval, RETRY_FAILED_AFTER) if failed else interval
    return now + wait + schedule_offset(user_id, wait)


def _busy(now: datetime) -> Q:
    return Q(sync_claimed_until__gt=now) | Q(
        last_sync_status=SyncStatus.QUEUED, updated_at__gt=now - queued_expiry()
    )


def request_sync(*, user_id: int, trigger: str, full: bool = False) -> bool:
    """Queue a sync of this user's library once the current transaction commits.

    Returns False (and queues nothing) when the user has no usable Kitsu link, or when a sync
    is already queued or running. When the broker cannot take the task, its error propagates
    and the user is not left marked as queued.
    """
    if not KitsuToken.objects.filter(user_id=user_id, needs_relink=False).exists():
        return False
    state, _ = KitsuSyncState.objects.get_or_create(user_id=user_id)
    now = timezone.now()
    queued = (
        KitsuSyncState.objects.filter(pk=state.pk)
        .exclude(_busy(now))
        .update(last_sync_status=SyncStatus.QUEUED, updated_at=now)
    )
    if not queued:
        return False
    from kitsu_sync.tasks import sync_library  # the tasks module imports this one

    def send() -> None:
        try:
            sync_library.delay(user_id, str(trigger), full)
        except Exception:
            # Broker down (Redis restarting): a "queued" mark with no message would keep Sync
            # now and the scheduler away from this user for queued_expiry().
            KitsuSyncState.objects.filter(
                pk=state.pk, last_sync_status=SyncStatus.QUEUED, updated_at=now
            ).update(last_sync_status=state.last_sync_status)
            raise

    transaction.on_commit(send)
    return True


def dispatch_due_syncs(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Queue a sync for every linked user whose next sync time has passed (at most `limit`,
    default KITSU_SYNC_DISPATCH_LIMIT, longest overdue first). Returns how many were queued."""
    if not settings.KITSU_SYNC_ENABLED:
        return 0
    now = now or timezone.now()
    limit = settings.KITSU_SYNC_DISPATCH_LIMIT if limit is None else limit
    state = "user__kitsu_sync_state__"
    due = (
        KitsuToken.objects.filter(needs_relink=False)
        .filter(
            Q(**{f"{state}isnull": True})
            | Q(**{f"{state}next_sync_at__isnull": True})
            | Q(**{f"{state}next_sync_at__lte": now})
        )
        .exclude(**{f"{state}sync_claimed_until__gt": now})
        .exclude(
            **{
                f"{state}last_sync_status": SyncStatus.QUEUED,
                f"{state}updated_at__gt": now - queued_expiry(),
            }
        )
        .order_by(F(f"{state}next_sync_at").asc(nulls_first=True), "user_id")
        .values_list("user_id", flat=True)[:limit]
    )
    return sum(request_sync(user_id=user_id, trigger=SyncTrigger.SCHEDULE) for user_id in due)


def full_pass_due(state: KitsuSyncState, now: datetime) -> bool:
    """A full pass (which notices deletions) is due on the first sync and every
    KITSU_SYNC_FULL_INTERVAL; after a failed run, the next one first resumes from the cursor."""
    if state.cursor_updated_at is None:
        return True
    last_run = (
        SyncRun.objects.filter(user_id=state.user_id, dry_run=False)
        .exclude(outcome__in=[SyncOutcome.SKIPPED, SyncOutcome.RUNNING])
        .values_list("outcome", flat=True)
        .first()
    )
    if last_run == SyncOutcome.FAILED:
        return False
    last_full = state.last_full_sync_at
    return last_full is None or now - last_full >= settings.KITSU_SYNC_FULL_INTERVAL


# --- the claim --------------------------------------------------------------------------------


def claim_lapses_in(*, user_id: int) -> float:
    """Seconds until the user's sync claim lapses (0 when nobody holds it)."""
    until = (
        KitsuSyncState.objects.filter(user_id=user_id)
        .values_list("sync_claimed_until", flat=True)
        .first()
    )
    return 0.0 if until is None else max((until - timezone.now()).total_seconds(), 0.0)


def _claim(user_id: int, now: datetime, *, running: bool) -> datetime | None:
    """Take the user's sync claim; its expiry time is the token that renews and releases it."""
    until = now + CLAIM_TTL
    updates: dict[str, Any] = {"sync_claimed_until": until, "updated_at": now}
    if running:
        updates.update(last_sync_status=SyncStatus.RUNNING, progress_done=0, progress_total=None)
    claimed = (
        KitsuSyncState.objects.filter(user_id=user_id)
        .filter(Q(sync_claimed_until__isnull=True) | Q(sync_claimed_until__lte=now))
        .update(**updates)
    )
    return until if claimed else None


def _renew(user_id: int, claim: datetime, **fields: Any) -> datetime:
    now = timezone.now()
    until = max(now + CLAIM_TTL, claim + timedelta(microseconds=1))
    renewed = KitsuSyncState.objects.filter(user_id=user_id, sync_claimed_until=claim).update(
        sync_claimed_until=until, updated_at=now, **fields
    )
    if not renewed:
        raise SyncClaimLost(
            "This sync ran longer than its claim and another sync took over; it stopped."
        )
    return until


class _Claim:
    """The claim a running sync holds, renewed as it makes progress."""

    def __init__(self, user_id: int, until: datetime | None) -> None:
        self.user_id = user_id
        self.until = until

    def renew(self, **fields: Any) -> None:
        if self.until is not None:
            self.until = _renew(self.user_id, self.until, **fields)

    def release(self, **fields: Any) -> bool:
        """Give the claim back, writing `fields` with it; False when it was no longer ours."""
        if self.until is None:
            return False
        released = KitsuSyncState.objects.filter(
            user_id=self.user_id, sync_claimed_until=self.until
        ).update(sync_claimed_until=None, updated_at=timezone.now(), **fields)
        self.until = None
        return bool(released)


def _session(link: KitsuToken, *, client: KitsuClient, dry_run: bool) -> SyncSession:
    """A run's session for this link: a fresh access token, refreshed once after a 401."""
    user_id = link.user_id
    return SyncSession(
        user_id=user_id,
        kitsu_user_id=link.kitsu_user_id,
        direction=settings.KITSU_SYNC_DIRECTION,
        dry_run=dry_run,
        client=client,
        token=tokens.get_access_token(user_id=user_id),
        refresh_access_token=lambda rejected: tokens.refresh_access_token(
            user_id=user_id, rejected_token=rejected
        ),
    )


# --- one run ----------------------------------------------------------------------------------


# Set when Kitsu refuses the sparse fieldsets: this process then asks for whole pages.
_fieldsets_refused = False


def _library_fields() -> dict[str, tuple[str, ...]] | None:
    return None if _fieldsets_refused else LIBRARY_FIELDSETS


def _refuses_a_field(exc: KitsuBadRequest) -> bool:
    """Kitsu's 400 "Invalid field" (JSON:API code 104): a field it does not know (any more)."""
    return any(str(error.get("code")) == "104" for error in exc.errors)


def _library_pages(session: SyncSession, *, since: datetime | None) -> Iterator[Document]:
    """The library, oldest change first, page by page. After a 401 the token is refreshed
    once and the listing resumes at the page that failed (Kitsu's own next link). Should
    Kitsu refuse a field of the sparse fieldsets, the listing starts again with whole pages."""
    global _fieldsets_refused
    next_url: str | None = None
    refreshed = False
    while True:
        try:
            if next_url is None:
                pages = session.client.iter_library_pages(
                    user_id=session.kitsu_user_id,
                    token=session.token,
                    since=since,
                    # Oldest change first: once a page is stored the cursor may move past it.
                    sort="updatedAt",
                    fields=_library_fields(),
                )
            else:
                pages = session.client.iter_documents(next_url, token=session.token)
            for document in pages:
                refreshed = False
                next_url = document.next_url
                yield document
            return
        except KitsuUnauthorized:
            if refreshed:
                raise
            session.refresh()
            refreshed = True
        except KitsuBadRequest as exc:
            if next_url is not None or _fieldsets_refused or not _refuses_a_field(exc):
                raise
            logger.warning("Kitsu refused the sparse fieldsets (%s); asking for whole pages.", exc)
            _fieldsets_refused = True


def _entries_by_id(session: SyncSession, entry_ids: list[int]) -> Iterator[Document]:
    """The user's library entries with these ids (those Kitsu still has), a batch at a time."""
    for start in range(0, len(entry_ids), ENTRIES_BY_ID_BATCH):
        batch = entry_ids[start : start + ENTRIES_BY_ID_BATCH]
        yield from session.call(
            lambda token, batch=batch: list(
                session.client.iter_library_pages(
                    user_id=session.kitsu_user_id, token=token, ids=batch, fields=_library_fields()
                )
            )
        )


def _total(document: Document) -> int | None:
    count = document.meta.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


class _Progress:
    """What a run has learnt so far; it outlives an exception half-way through."""

    def __init__(self, cursor: datetime | None) -> None:
        self.cursor = cursor
        self.listing_complete = False
        self.done = 0
        self.total: int | None = None


def _synchronise(
    session: SyncSession,
    *,
    full: bool,
    claim: _Claim,
    progress: _Progress,
    on_progress: ProgressCallback | None,
) -> None:
    """Read the library from Kitsu (writing each page), then remove what vanished (full pass
    only), then send Revenge's changes to Kitsu (when the direction allows)."""
    since = None
    if not full and progress.cursor is not None:
        since = progress.cursor - CURSOR_OVERLAP
    starting_cursor = progress.cursor
    seen_entry_ids: set[int] = set()
    visited_pks: set[int] = set()
    pushes: list[exporter.PendingPush] = []
    unreadable_entry = False
    shifted = False

    def store(document: Document) -> None:
        nonlocal unreadable_entry, shifted
        with transaction.atomic():
            page = importer.import_page(session, document)
            progress.done += len(document.resources)
            newest = page.newest_updated_at
            if newest is not None and (progress.cursor is None or newest > progress.cursor):
                progress.cursor = newest
            # The cursor moves in the same transaction as the page: a failed sync resumes here.
            claim.renew(
                cursor_updated_at=progress.cursor,
                progress_done=progress.done,
                progress_total=progress.total,
            )
        # Met twice in one listing: it changed on Kitsu meanwhile and jumped to the end of
        # Kitsu's updatedAt order, so the offset pages after it slid back one entry.
        shifted = shifted or not page.seen_entry_ids.isdisjoint(seen_entry_ids)
        seen_entry_ids.update(page.seen_entry_ids)
        visited_pks.update(page.visited_entry_pks)
        pushes.extend(page.pushes)
        unreadable_entry = unreadable_entry or page.unreadable_entry
        if on_progress is not None:
            on_progress(progress.done, progress.total)

    for document in _library_pages(session, since=since):
        if progress.total is None:
            progress.total = _total(document)
        store(document)
    progress.listing_complete = True
    if shifted:
        # An entry may have slid past a page boundary unread: read this window again next time.
        progress.cursor = starting_cursor
        claim.renew(cursor_updated_at=starting_cursor)

    if full:
        if unreadable_entry:
            session.record_error(
                "Kitsu sent a library entry without a readable id, so entries deleted on "
                "Kitsu were not removed here this time."
            )
        else:
            # A shifted page can leave an entry unread that Kitsu still has: ask for the
            # missing ones by id, and remove only those Kitsu does not return.
            for document in _entries_by_id(
                session, importer.unseen_entry_ids(session, seen_entry_ids)
            ):
                store(document)
            importer.remove_vanished_entries(session, seen_entry_ids)
    if session.direction != IMPORT_ONLY:
        # Sent only now that the whole library is read: a write moves the entry to the end of
        # Kitsu's updatedAt order, which would shift the pages still to be read.
        pushes.extend(importer.entries_with_local_changes(session, exclude_pks=visited_pks))
        exporter.push_changes(session, pushes, after_batch=claim.renew)


def _failure(reason: str, *, retryable: bool = False) -> dict[str, Any]:
    return {
        "at": timezone.now().isoformat(),
        "entry": None,
        "anime": None,
        "title": "",
        "reason": reason,
        "retryable": retryable,
    }


def _finish_early(run: SyncRun, *, outcome: str, reason: str, state_status: str | None) -> SyncRun:
    """End a run that never reached Kitsu (no link, needs re-link, already running)."""
    run.outcome = outcome
    run.errors = [_failure(reason)]
    run.finished_at = timezone.now()
    run.save()
    if state_status is not None and not run.dry_run:
        KitsuSyncState.objects.filter(user_id=run.user_id).update(
            last_sync_status=state_status, errors=run.errors, updated_at=run.finished_at
        )
    return run


ABANDONED_RUN = (
    "This sync stopped before it finished (its worker was stopped, or lost the database); "
    "a later sync continued from where it left off."
)


def _close_abandoned_runs(run: SyncRun) -> None:
    """Runs still marked running when a new sync takes the claim died with their worker:
    say so in the history rather than show them running forever."""
    SyncRun.objects.filter(
        user_id=run.user_id,
        outcome=SyncOutcome.RUNNING,
        dry_run=False,
        started_at__lt=run.started_at,
    ).update(
        outcome=SyncOutcome.FAILED, finished_at=timezone.now(), errors=[_failure(ABANDONED_RUN)]
    )


def run_sync(
    *,
    user_id: int,
    trigger: str,
    full: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> SyncRun:
    """Sync one user's library now, in this process, and return the run's record.

    Never raises for a Kitsu or data problem: every failure is recorded (with a reason a person
    can act on) in the SyncRun and in the user's KitsuSyncState. `progress(done, total)` is
    called after each page. A dry run reads Kitsu and changes nothing on either side; its
    `planned_changes` say what a real run would do.
    """
    now = timezone.now()
    state, _ = KitsuSyncState.objects.get_or_create(user_id=user_id)
    full = full or full_pass_due(state, now)
    run = SyncRun.objects.create(
        user_id=user_id,
        trigger=trigger,
        direction=settings.KITSU_SYNC_DIRECTION,
        full=full,
        dry_run=dry_run,
    )
    link = KitsuToken.objects.filter(user_id=user_id).first()
    if link is None:
        return _finish_early(
            run,
            outcome=SyncOutcome.FAILED,
            reason="This user has not linked a Kitsu account: link one first.",
            state_status=SyncStatus.FAILED,
        )
    if link.needs_relink:
        return _finish_early(
            run,
            outcome=SyncOutcome.FAILED,
            reason=(
                f"Kitsu no longer accepts this link ({link.relink_reason or 'refresh refused'}):"
                " link your Kitsu account again."
            ),
            state_status=SyncStatus.NEEDS_RELINK,
        )
    claim = _Claim(user_id, None)
    if not dry_run:
        claim.until = _claim(user_id, now, running=True)
        if claim.until is None:
            return _finish_early(
                run,
                outcome=SyncOutcome.SKIPPED,
                reason="Another sync of this library was running; this one was skipped.",
                state_status=None,
            )
        _close_abandoned_runs(run)

    client = get_kitsu_client()
    requests_before = client.transport.requests_made
    state_progress = _Progress(state.cursor_updated_at)
    session: SyncSession | None = None
    fatal: dict[str, Any] | None = None
    state_status: str | None = None
    try:
        session = _session(link, client=client, dry_run=dry_run)
        _synchronise(session, full=full, claim=claim, progress=state_progress, on_progress=progress)
    except tokens.NeedsRelink as exc:
        fatal = _failure(exc.message)
        state_status = SyncStatus.NEEDS_RELINK
    except tokens.KitsuLinkError as exc:
        fatal = _failure(exc.message, retryable=exc.retryable)
    except KitsuError as exc:
        fatal = _failure(describe_kitsu_error(exc), retryable=exc.retryable)
    except SyncClaimLost as exc:
        fatal = _failure(str(exc))
        claim.until = None  # someone else's now: never release it
    except (OperationalError, InterfaceError):
        logger.warning("Kitsu sync of user %s lost the database", user_id, exc_info=True)
        fatal = _failure(
            "The database was unavailable during the sync; it will be tried again later.",
            retryable=True,
        )
    except SoftTimeLimitExceeded:
        fatal = _failure(
            "The sync took longer than allowed and was stopped; the next one continues where it "
            "left off.",
            retryable=True,
        )
    except Exception as exc:
        logger.exception("Kitsu sync of user %s failed unexpectedly", user_id)
        fatal = _failure(f"The sync failed unexpectedly ({type(exc).__name__}): {exc}")

    return _record(
        run,
        session=session,
        fatal=fatal,
        state_status=state_status,
        claim=claim,
        progress=state_progress,
        requests_made=client.transport.requests_made - requests_before,
    )


def _record(
    run: SyncRun,
    *,
    session: SyncSession | None,
    fatal: dict[str, Any] | None,
    state_status: str | None,
    claim: _Claim,
    progress: _Progress,
    requests_made: int,
) -> SyncRun:
    errors = session.recorded_errors() if session is not None else []
    if fatal is not None:
        if session is not None and session.token:
            fatal["reason"] = fatal["reason"].replace(session.token, "<token>")
        errors.append(fatal)
        run.outcome = SyncOutcome.FAILED
    else:
        run.outcome = SyncOutcome.PARTIAL if errors else SyncOutcome.SUCCESS
    if session is not None:
        for name, value in vars(session.counts).items():
            setattr(run, name, value)
        run.conflict_log = session.conflict_log
        run.planned_changes = session.planned_changes
    run.requests_made = max(requests_made, 0)
    run.errors = errors
    run.finished_at = timezone.now()
    run.save()
    if run.dry_run:
        return run

    fields: dict[str, Any] = {
        "last_sync_at": run.finished_at,
        "last_sync_status": state_status or _STATUS_FOR_OUTCOME[run.outcome],
        "errors": errors,
        "entries_synced": LibraryEntry.objects.filter(user_id=run.user_id).count(),
        "next_sync_at": next_sync_time(
            user_id=run.user_id,
            now=run.finished_at,
            failed=run.outcome == SyncOutcome.FAILED,
        ),
    }
    if run.full and progress.listing_complete and fatal is None:
        fields["last_full_sync_at"] = run.finished_at
    if not claim.release(**fields):
        logger.warning("Kitsu sync of user %s finished without its claim", run.user_id)
    return run


def should_retry(run: SyncRun) -> bool:
    """True when the run failed for a reason that a later attempt may fix."""
    return run.outcome == SyncOutcome.FAILED and any(error.get("retryable") for error in run.errors)


# --- a single entry, right after it changed ----------------------------------------------------


def push_library_entry(*, entry_id: int) -> bool:
    """Send one entry's Revenge changes to Kitsu now (watch progress), when the direction
    allows it. Raises SyncBusy while a sync holds the user's claim (that sync or the next one
    sends the change too); a Kitsu error a retry may fix propagates. True when Kitsu took it.
    """
    if settings.KITSU_SYNC_DIRECTION == IMPORT_ONLY:
        return False
    entry = LibraryEntry.objects.filter(pk=entry_id).only("pk", "user_id").first()
    if entry is None:
        return False
    user_id = entry.user_id
    link = KitsuToken.objects.filter(user_id=user_id, needs_relink=False).first()
    if link is None:
        return False
    KitsuSyncState.objects.get_or_create(user_id=user_id)
    claim = _Claim(user_id, _claim(user_id, timezone.now(), running=False))
    if claim.until is None:
        raise SyncBusy(f"A sync of user {user_id}'s library is running.")
    session: SyncSession | None = None
    try:
        session = _session(link, client=get_kitsu_client(), dry_run=False)
        pushes = importer.entries_with_local_changes(
            session, exclude_pks=set(), only_pks={entry_id}
        )
        exporter.push_changes(session, pushes)
        return session.counts.pushed > 0
    except tokens.NeedsRelink as exc:
        KitsuSyncState.objects.filter(user_id=user_id).update(
            last_sync_status=SyncStatus.NEEDS_RELINK, errors=[_failure(exc.message)]
        )
        return False
    except KitsuError as exc:
        if exc.retryable or session is None:
            raise
        session.record_error(describe_kitsu_error(exc))
        return False
    finally:
        fields: dict[str, Any] = {}
        if session is not None and session.errors:
            state = KitsuSyncState.objects.get(user_id=user_id)
            fields["errors"] = [*state.errors, *session.recorded_errors()][-100:]
        claim.release(**fields)
