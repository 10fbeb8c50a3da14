"""One sync of a user's library, and the push of one entry right after it changed.

A sync reads Kitsu's library page by page (oldest change first), plans each page against the
stored rows (`kitsu_sync.plan`) and writes it with the incremental cursor in one transaction;
a full pass then removes what vanished from Kitsu; last, Revenge's changes are sent to Kitsu
(when the direction allows). `run_sync` applies every plan; `preview_sync`, a dry run,
computes the same plans and applies none.

One sync per user at a time, across every worker, is a claim on
`KitsuSyncState.sync_claimed_until` (`db.Claim`) that expires on its own, so a killed worker
cannot block a user for longer than `CLAIM_TTL`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from kitsu_sync import logcontext
from kitsu_sync.db import Claim, ClaimLost
from kitsu_sync.kitsu_api import Document, KitsuError
from kitsu_sync.kitsu_client import get_kitsu_client
from kitsu_sync.mapping import LIBRARY_FIELDSETS
from kitsu_sync.merge import SyncDirection
from kitsu_sync.models import (
    KitsuSyncState,
    KitsuToken,
    LibraryEntry,
    SyncOutcome,
    SyncRun,
    SyncStatus,
)
from kitsu_sync.plan import (
    PagePlan,
    PlannedChange,
    Push,
    RemotePage,
    RemovalPlan,
    SyncCounts,
    plan_local_push,
    plan_removals,
    read_page,
)
from kitsu_sync.records import ConflictRecord, ErrorRecord, error_record
from kitsu_sync.services import library, push, schedule, tokens
from kitsu_sync.services.kitsu_errors import describe_sync_error
from kitsu_sync.signals import sync_finished

logger = logging.getLogger(__name__)

# A claim lasts this long and is renewed after every page and every batch of writes.
CLAIM_TTL = timedelta(minutes=10)
# filter[since] looks back this far before the cursor, in case Kitsu commits an older
# updatedAt after a newer one.
CURSOR_OVERLAP = timedelta(minutes=5)
# Entries asked for by id in one request (their ids travel in the query string).
ENTRIES_BY_ID_BATCH = 100
# Errors kept per run and per state row; the count of the rest is kept in one closing line.
MAX_RECORDED_ERRORS = 100

ANOTHER_SYNC = "Another sync of this library was running; this one was skipped."
DELIVERY_RUNNING = (
    "Revenge's changes were being sent to Kitsu; the sync is tried again in a few seconds."
)
ABANDONED_RUN = (
    "This sync stopped before it finished (its worker was stopped, or lost the database); "
    "a later sync continued from where it left off."
)

_STATUS_FOR_OUTCOME = {
    SyncOutcome.SUCCESS: SyncStatus.SUCCESS,
    SyncOutcome.PARTIAL: SyncStatus.PARTIAL,
    SyncOutcome.FAILED: SyncStatus.FAILED,
}

ProgressCallback = Callable[[int, int | None], None]


class SyncBusy(Exception):
    """Another sync of this user's library holds the claim; try again later."""

    retryable = True


# --- what a run learns ------------------------------------------------------------------------


@dataclass
class RunReport:
    """What a run has done so far; it outlives an exception half-way through."""

    counts: SyncCounts = field(default_factory=SyncCounts)
    errors: list[ErrorRecord] = field(default_factory=list)
    errors_dropped: int = 0
    conflicts: list[ConflictRecord] = field(default_factory=list)
    # What stopped the run, if anything did, and the sync status it leaves (None: by outcome).
    fatal: ErrorRecord | None = None
    fatal_status: str | None = None

    def add(
        self,
        counts: SyncCounts,
        errors: Any = (),
        conflicts: Any = (),
    ) -> None:
        self.counts += counts
        self.conflicts.extend(conflicts)
        for error in errors:
            if len(self.errors) >= MAX_RECORDED_ERRORS:
                self.errors_dropped += 1
            else:
                self.errors.append(error)

    def recorded_errors(self, *, hide: str | None) -> list[ErrorRecord]:
        """The errors to keep, with no copy of `hide` (the access token) in any of them."""
        errors = list(self.errors)
        if self.errors_dropped:
            errors.append(error_record(f"... and {self.errors_dropped} more errors like these."))
        if hide:
            for error in errors:
                error["reason"] = error["reason"].replace(hide, "<token>")
        return errors


@dataclass
class Listing:
    """What the walk through Kitsu's library has met so far."""

    cursor: datetime | None
    done: int = 0
    total: int | None = None
    complete: bool = False
    seen_entry_ids: set[int] = field(default_factory=set)
    met_entry_pks: set[int] = field(default_factory=set)
    pushes: list[Push] = field(default_factory=list)
    unreadable_entry: bool = False
    # An entry met twice changed on Kitsu meanwhile and jumped to the end of Kitsu's updatedAt
    # order, so the offset pages after it slid back one entry: one may have been skipped.
    shifted: bool = False

    def cursor_after(self, plan: PagePlan) -> datetime | None:
        newest = plan.newest_updated_at
        if newest is not None and (self.cursor is None or newest > self.cursor):
            return newest
        return self.cursor

    def add(self, plan: PagePlan) -> None:
        self.cursor = self.cursor_after(plan)
        self.shifted = self.shifted or not plan.seen_entry_ids.isdisjoint(self.seen_entry_ids)
        self.seen_entry_ids.update(plan.seen_entry_ids)
        self.met_entry_pks.update(plan.met_entry_pks)
        self.pushes.extend(plan.pushes)
        self.unreadable_entry = self.unreadable_entry or plan.unreadable_entry


# --- applying plans, or only listing them -------------------------------------------------------


class Steps(Protocol):
    """What a run does with its plans: write them (`Apply`) or list them (`Preview`)."""

    def page(self, remote: RemotePage, listing: Listing) -> PagePlan: ...

    def cursor_reset(self, cursor: datetime | None) -> None: ...

    def removals(self, plan: RemovalPlan) -> None: ...

    def pushes(self, access: tokens.KitsuAccess, pushes: list[Push]) -> push.PushOutcome: ...


@dataclass
class Apply:
    user_id: int
    direction: str
    claim: Claim

    def page(self, remote: RemotePage, listing: Listing) -> PagePlan:
        def move_cursor(plan: PagePlan) -> None:
            # In the page's transaction: a failed sync resumes after the last page written.
            self.claim.renew(
                cursor_updated_at=listing.cursor_after(plan),
                progress_done=listing.done,
                progress_total=listing.total,
                updated_at=timezone.now(),
            )

        return library.sync_page(
            remote, user_id=self.user_id, direction=self.direction, after_write=move_cursor
        )

    def cursor_reset(self, cursor: datetime | None) -> None:
        self.claim.renew(cursor_updated_at=cursor, updated_at=timezone.now())

    def removals(self, plan: RemovalPlan) -> None:
        library.apply_removals(plan)

    def pushes(self, access: tokens.KitsuAccess, pushes: list[Push]) -> push.PushOutcome:
        def renew() -> None:
            self.claim.renew(updated_at=timezone.now())

        return push.send_pushes(access, pushes, direction=self.direction, after_batch=renew)


@dataclass
class Preview:
    user_id: int
    direction: str
    planned: list[PlannedChange] = field(default_factory=list)

    def page(self, remote: RemotePage, listing: Listing) -> PagePlan:
        plan = library.preview_page(remote, user_id=self.user_id, direction=self.direction)
        self.planned.extend(change for change in plan.planned_changes() if change.side != "kitsu")
        return plan

    def cursor_reset(self, cursor: datetime | None) -> None:
        return None

    def removals(self, plan: RemovalPlan) -> None:
        self.planned.extend(plan.planned_changes())

    def pushes(self, access: tokens.KitsuAccess, pushes: list[Push]) -> push.PushOutcome:
        self.planned.extend(item.planned_change() for item in pushes)
        return push.PushOutcome()


# --- the walk -----------------------------------------------------------------------------------


def _entries_by_id(access: tokens.KitsuAccess, entry_ids: list[int]) -> Iterator[Document]:
    """The user's library entries with these ids (those Kitsu still has), a batch at a time."""
    for start in range(0, len(entry_ids), ENTRIES_BY_ID_BATCH):
        yield from access.client.iter_library_pages(
            user_id=access.kitsu_user_id,
            token=access.token,
            ids=entry_ids[start : start + ENTRIES_BY_ID_BATCH],
            fields=LIBRARY_FIELDSETS,
        )


def synchronise(
    access: tokens.KitsuAccess,
    steps: Steps,
    *,
    user_id: int,
    direction: str,
    full: bool,
    listing: Listing,
    report: RunReport,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Read the library from Kitsu (a plan per page), then what vanished (full pass only),
    then Revenge's changes for Kitsu (when the direction sends them)."""

    def take(document: Document) -> None:
        listing.done += len(document.resources)
        plan = steps.page(read_page(document.resources, now=timezone.now()), listing)
        listing.add(plan)
        report.add(plan.counts, plan.errors, plan.conflicts)
        if on_progress is not None:
            on_progress(listing.done, listing.total)

    starting_cursor = listing.cursor
    since = None if full or starting_cursor is None else starting_cursor - CURSOR_OVERLAP
    for document in access.client.iter_library_pages(
        user_id=access.kitsu_user_id,
        token=access.token,
        since=since,
        # Oldest change first: once a page is stored the cursor may move past it.
        sort="updatedAt",
        fields=LIBRARY_FIELDSETS,
    ):
        listing.total = listing.total if listing.total is not None else document.total
        take(document)
    listing.complete = True
    if listing.shifted:
        # An entry may have slid past a page boundary unread: read this window again next time.
        listing.cursor = starting_cursor
        steps.cursor_reset(starting_cursor)
    if full:
        _full_pass_end(
            access,
            steps,
            user_id=user_id,
            direction=direction,
            listing=listing,
            report=report,
            take=take,
        )
    if direction != SyncDirection.IMPORT_ONLY:
        # Sent only now that the whole library is read: a write moves the entry to the end of
        # Kitsu's updatedAt order, which would shift the pages still to be read.
        pending = library.entries_with_local_changes(
            user_id=user_id, exclude_pks=listing.met_entry_pks
        )
        local = (plan_local_push(entry, direction=direction) for entry in pending)
        pushes = [*listing.pushes, *(item for item in local if item is not None)]
        _send(access, steps, pushes, report)


def _full_pass_end(
    access: tokens.KitsuAccess,
    steps: Steps,
    *,
    user_id: int,
    direction: str,
    listing: Listing,
    report: RunReport,
    take: Callable[[Document], None],
) -> None:
    if listing.unreadable_entry:
        report.add(
            SyncCounts(),
            [
                error_record(
                    "Kitsu sent a library entry without a readable id, so entries deleted on "
                    "Kitsu were not removed here this time."
                )
            ],
        )
        return
    # A shifted page can leave an entry unread that Kitsu still has: ask for the missing ones
    # by id, and remove only those Kitsu does not return.
    unseen = library.unseen_entry_ids(user_id=user_id, seen_entry_ids=listing.seen_entry_ids)
    for document in _entries_by_id(access, unseen):
        take(document)
    gone = [entry_id for entry_id in unseen if entry_id not in listing.seen_entry_ids]
    vanished = library.vanished_entries(user_id=user_id, kitsu_entry_ids=gone)
    removals = plan_removals(vanished, direction=direction, now=timezone.now())
    steps.removals(removals)
    report.add(removals.counts, conflicts=removals.conflicts)


def _send(access: tokens.KitsuAccess, steps: Steps, pushes: list[Push], report: RunReport) -> None:
    outcome = steps.pushes(access, pushes)
    report.add(SyncCounts(pushed=outcome.pushed, failed=outcome.failed), outcome.errors)
    if outcome.stopped_by is not None:
        raise outcome.stopped_by


# --- a run, from start to record ----------------------------------------------------------------


def _fatal(exc: BaseException, user_id: int) -> tuple[ErrorRecord, str | None]:
    """The error record of what stopped a run, and the sync status it leaves (None: by outcome)."""
    if isinstance(exc, tokens.NeedsRelink):
        return error_record(exc.message), SyncStatus.NEEDS_RELINK
    if isinstance(exc, tokens.KitsuLinkError):
        return error_record(exc.message, retryable=exc.retryable), None
    if isinstance(exc, KitsuError):
        return error_record(describe_sync_error(exc), retryable=exc.retryable), None
    if isinstance(exc, ClaimLost):
        return error_record(
            "This sync ran longer than its claim and another sync took over; it stopped."
        ), None
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Kitsu sync of user %s lost the database", user_id, exc_info=exc)
        reason = "The database was unavailable during the sync; it will be tried again later."
        return error_record(reason, retryable=True), None
    if isinstance(exc, SoftTimeLimitExceeded):
        reason = (
            "The sync took longer than allowed and was stopped; the next one continues where it "
            "left off."
        )
        return error_record(reason, retryable=True), None
    logger.error("Kitsu sync of user %s failed unexpectedly", user_id, exc_info=exc)
    return error_record(f"The sync failed unexpectedly ({type(exc).__name__}): {exc}"), None


def _start_run(*, user_id: int, trigger: str, full: bool, dry_run: bool) -> tuple[SyncRun, bool]:
    """The run's record, and whether a full pass is due."""
    state, _ = KitsuSyncState.objects.get_or_create(user_id=user_id)
    full = full or schedule.full_pass_due(state, timezone.now())
    run = SyncRun.objects.create(
        user_id=user_id,
        trigger=trigger,
        direction=settings.KITSU_SYNC_DIRECTION,
        full=full,
        dry_run=dry_run,
    )
    logcontext.bind(user_id=user_id, sync_run_id=run.pk)
    return run, full


def _link_problem(user_id: int) -> tuple[str, str] | None:
    """Why this user's library cannot be synced at all: (reason, sync status), or None."""
    link = KitsuToken.objects.filter(user_id=user_id).only("needs_relink", "relink_reason").first()
    if link is None:
        return "This user has not linked a Kitsu account: link one first.", SyncStatus.FAILED
    if link.needs_relink:
        return (
            f"Kitsu no longer accepts this link ({link.relink_reason or 'refresh refused'}):"
            " link your Kitsu account again.",
            SyncStatus.NEEDS_RELINK,
        )
    return None


def _end_early(run: SyncRun, *, outcome: str, reason: str) -> SyncRun:
    run.outcome = outcome
    run.errors = [error_record(reason)]
    run.finished_at = timezone.now()
    run.save()
    return run


def _perform(
    run: SyncRun,
    steps: Steps,
    *,
    cursor: datetime | None,
    progress: ProgressCallback | None,
) -> tuple[RunReport, Listing, str | None]:
    """Do the run's work and say what happened, whatever happens: (report, listing, the
    access token, which no record may contain)."""
    report = RunReport()
    listing = Listing(cursor=cursor)
    access: tokens.KitsuAccess | None = None
    try:
        access = tokens.kitsu_access(user_id=run.user_id)
        synchronise(
            access,
            steps,
            user_id=run.user_id,
            direction=run.direction,
            full=run.full,
            listing=listing,
            report=report,
            on_progress=progress,
        )
    except Exception as exc:
        report.fatal, report.fatal_status = _fatal(exc, run.user_id)
    return report, listing, None if access is None else access.token.value


def _record(run: SyncRun, report: RunReport, *, hide: str | None, requests_made: int) -> None:
    errors = report.recorded_errors(hide=hide)
    fatal = report.fatal
    if fatal is not None:
        if hide:
            fatal["reason"] = fatal["reason"].replace(hide, "<token>")
        errors.append(fatal)
        run.outcome = SyncOutcome.FAILED
    else:
        run.outcome = SyncOutcome.PARTIAL if errors else SyncOutcome.SUCCESS
    for name, value in report.counts.as_dict().items():
        setattr(run, name, value)
    run.conflict_log = report.conflicts
    run.requests_made = max(requests_made, 0)
    run.errors = errors
    run.finished_at = timezone.now()
    run.save()


def _close_abandoned_runs(run: SyncRun) -> None:
    """Runs still marked running when a new sync takes the claim died with their worker:
    say so in the history rather than show them running forever."""
    SyncRun.objects.filter(
        user_id=run.user_id,
        outcome=SyncOutcome.RUNNING,
        dry_run=False,
        started_at__lt=run.started_at,
    ).update(
        outcome=SyncOutcome.FAILED,
        finished_at=timezone.now(),
        errors=[error_record(ABANDONED_RUN)],
    )


def _state_row(user_id: int) -> Any:
    return KitsuSyncState.objects.filter(user_id=user_id)


@logcontext.scoped
def run_sync(
    *,
    user_id: int,
    trigger: str,
    full: bool = False,
    progress: ProgressCallback | None = None,
) -> SyncRun:
    """Sync one user's library now, in this process, and return the run's record.

    Never raises for a Kitsu or data problem: every failure is recorded (with a reason a person
    can act on) in the SyncRun and in the user's KitsuSyncState. `progress(done, total)` is
    called after each page.
    """
    run, full = _start_run(user_id=user_id, trigger=trigger, full=full, dry_run=False)
    problem = _link_problem(user_id)
    if problem is not None:
        reason, status = problem
        _end_early(run, outcome=SyncOutcome.FAILED, reason=reason)
        _state_row(user_id).update(
            last_sync_status=status, errors=run.errors, updated_at=run.finished_at
        )
        return run
    claim = Claim.take(
        _state_row(user_id),
        "sync_claimed_until",
        ttl=CLAIM_TTL,
        last_sync_status=SyncStatus.RUNNING,
        progress_done=0,
        progress_total=None,
        updated_at=timezone.now(),
    )
    if claim is None:
        # A sync holding the claim says RUNNING; otherwise a delivery of Revenge's changes
        # holds it for a moment, and this sync is tried again right after it.
        running = _state_row(user_id).filter(last_sync_status=SyncStatus.RUNNING).exists()
        reason = ANOTHER_SYNC if running else DELIVERY_RUNNING
        return _end_early(run, outcome=SyncOutcome.SKIPPED, reason=reason)
    _close_abandoned_runs(run)
    transport = get_kitsu_client().transport
    requests_before = transport.requests_made
    state = _state_row(user_id).values("cursor_updated_at").get()
    steps = Apply(user_id=user_id, direction=run.direction, claim=claim)
    report, listing, token = _perform(
        run, steps, cursor=state["cursor_updated_at"], progress=progress
    )
    _record(run, report, hide=token, requests_made=transport.requests_made - requests_before)
    fields: dict[str, Any] = {
        "last_sync_at": run.finished_at,
        "last_sync_status": report.fatal_status or _STATUS_FOR_OUTCOME[run.outcome],
        "errors": run.errors,
        "entries_synced": LibraryEntry.objects.filter(user_id=user_id).count(),
        "next_sync_at": schedule.next_sync_time(
            user_id=user_id, now=run.finished_at, failed=run.outcome == SyncOutcome.FAILED
        ),
        "updated_at": timezone.now(),
    }
    if run.full and listing.complete and report.fatal is None:
        fields["last_full_sync_at"] = run.finished_at
    if not claim.release(**fields):
        logger.warning("Kitsu sync of user %s finished without its claim", user_id)
    # Robust: what listens (notices) never undoes a recorded sync.
    sync_finished.send_robust(sender=SyncRun, user_id=user_id, run_id=run.pk, outcome=run.outcome)
    return run


@logcontext.scoped
def preview_sync(
    *, user_id: int, trigger: str, full: bool = False, progress: ProgressCallback | None = None
) -> SyncRun:
    """A dry run: read Kitsu and plan every change as `run_sync` would, and apply none (on
    either side). The run's `planned_changes` list them."""
    run, full = _start_run(user_id=user_id, trigger=trigger, full=full, dry_run=True)
    problem = _link_problem(user_id)
    if problem is not None:
        return _end_early(run, outcome=SyncOutcome.FAILED, reason=problem[0])
    transport = get_kitsu_client().transport
    requests_before = transport.requests_made
    state = _state_row(user_id).values("cursor_updated_at").get()
    steps = Preview(user_id=user_id, direction=run.direction)
    report, _listing, token = _perform(
        run, steps, cursor=state["cursor_updated_at"], progress=progress
    )
    run.planned_changes = [change.as_json() for change in steps.planned]
    _record(run, report, hide=token, requests_made=transport.requests_made - requests_before)
    return run


def claim_lapses_in(*, user_id: int) -> float:
    """Seconds until the user's sync claim lapses (0 when nobody holds it)."""
    until = _state_row(user_id).values_list("sync_claimed_until", flat=True).first()
    return 0.0 if until is None else max((until - timezone.now()).total_seconds(), 0.0)


def waits_for_a_delivery(run: SyncRun) -> bool:
    """The run was skipped only because a delivery of Revenge's changes held the claim."""
    return run.outcome == SyncOutcome.SKIPPED and any(
        error["reason"] == DELIVERY_RUNNING for error in run.errors
    )


def should_retry(run: SyncRun) -> bool:
    """True when the run failed for a reason that a later attempt may fix."""
    return run.outcome == SyncOutcome.FAILED and any(error.get("retryable") for error in run.errors)
