"""Fixtures of the sync services' tests (the sandbox, the product pointed at it and linked users
come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kitsu_sync.models import SyncOutcome, SyncTrigger
from kitsu_sync.services.sync import run_sync
from tests.sandbox_handle import SandboxHandle


@pytest.fixture
def imported(kitsu: SandboxHandle, linked_user: Callable[..., Any]) -> Any:
    """A linked user whose library was imported once (import only); the sandbox's request
    counters start afresh from here."""
    user = linked_user()
    run = run_sync(user_id=user.pk, trigger=SyncTrigger.LINK)
    assert run.outcome == SyncOutcome.SUCCESS
    kitsu.reset(data=False, tokens=False)
    return user
