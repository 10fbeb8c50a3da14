"""The default listing reads pages ahead (KITSU_PAGES_IN_FLIGHT=2): Kitsu failing from the
second page on then meets two requests at once. Bursts within the retry budget still end in a
complete import; an outage fails the run readably, keeps the first page, and the next run
resumes and ends in step with Kitsu. A guessed page's failure costs at most one more page's
retries, never an extra run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kitsu_sync.kitsu_client import get_transport
from kitsu_sync.models import SyncOutcome, SyncTrigger
from kitsu_sync.services.sync import run_sync
from tests.reliability.checks import Baseline, assert_in_step_with_kitsu, assert_readable
from tests.reliability.faults import FAULTS, change_on_kitsu, fault_mid_import, faults_fired
from tests.sync_support import visible_anime_entries

pytestmark = pytest.mark.django_db

PAGES_IN_FLIGHT = 2


@pytest.fixture
def kitsu_ahead(paged_kitsu: Any, settings: Any) -> Any:
    settings.KITSU_PAGES_IN_FLIGHT = PAGES_IN_FLIGHT
    return paged_kitsu


@dataclass
class Imported:
    """A user whose library is imported, then two of its entries changed on Kitsu."""

    user: Any
    baseline: Baseline
    changed: set[int]


@pytest.fixture
def imported_then_changed(kitsu_ahead: Any, linked_user: Any) -> Callable[[str], Imported]:
    """Make an `Imported` user of `kitsu_ahead`, named `name`."""

    def make(name: str) -> Imported:
        user = linked_user(name, sandbox=kitsu_ahead)
        first = run_sync(user_id=user.pk, trigger=SyncTrigger.LINK)
        assert first.outcome == SyncOutcome.SUCCESS, first.errors
        assert first.fetched > 1000, "three pages of 500"
        baseline = Baseline.of(user)
        entries = visible_anime_entries(kitsu_ahead)
        changed = change_on_kitsu(
            kitsu_ahead, [entries[3], entries[-3]], f"changed before the {name}"
        )
        return Imported(user, baseline, changed)

    return make


@pytest.mark.parametrize("fault", ["503", "connection reset", "truncated JSON"])
def test_with_pages_ahead_a_burst_within_the_retry_budget_still_imports_everything(
    kitsu_ahead: Any, imported_then_changed: Callable[[str], Imported], fault: str
) -> None:
    rule, _ = FAULTS[fault]
    library = imported_then_changed("burst")
    attempts = get_transport().retry.attempts

    fault_mid_import(kitsu_ahead, rule, count=attempts - 1)
    run = run_sync(user_id=library.user.pk, trigger=SyncTrigger.SCHEDULE, full=True)

    assert run.outcome == SyncOutcome.SUCCESS, run.errors
    assert faults_fired(kitsu_ahead) == attempts - 1
    assert_in_step_with_kitsu(library.user, kitsu_ahead)
    library.baseline.assert_intact(changed_on_kitsu=library.changed)


@pytest.mark.parametrize("fault", ["500", "hangs past the timeout", "HTML error page"])
def test_with_pages_ahead_an_outage_fails_readably_and_the_next_run_resumes(
    kitsu_ahead: Any, imported_then_changed: Callable[[str], Imported], fault: str
) -> None:
    rule, explanation = FAULTS[fault]
    library = imported_then_changed("outage")
    attempts = get_transport().retry.attempts

    fault_mid_import(kitsu_ahead, rule, count=None)
    failed = run_sync(user_id=library.user.pk, trigger=SyncTrigger.SCHEDULE, full=True)

    assert failed.outcome == SyncOutcome.FAILED
    # The failing page used its whole budget; the page guessed after it at most its own.
    assert attempts <= faults_fired(kitsu_ahead) <= PAGES_IN_FLIGHT * attempts
    reason = failed.errors[-1]["reason"]
    assert explanation in reason
    assert_readable(reason)
    assert failed.errors[-1]["retryable"] is True
    assert 500 <= failed.fetched < 1000, "the first page was stored, no later one"
    library.baseline.assert_intact(changed_on_kitsu=library.changed)

    kitsu_ahead.set_faults([])
    resumed = run_sync(user_id=library.user.pk, trigger=SyncTrigger.SCHEDULE, full=True)

    assert resumed.outcome == SyncOutcome.SUCCESS, resumed.errors
    assert_in_step_with_kitsu(library.user, kitsu_ahead)
    library.baseline.assert_intact(changed_on_kitsu=library.changed)
