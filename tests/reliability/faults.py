"""Kitsu failing from the second library page of an import on, shared by the tests of the
import with one page at a time (test_kitsu_faults.py) and with pages read ahead
(test_pages_ahead.py)."""

from __future__ import annotations

from typing import Any

from tests.sync_support import kitsu_update_entry

# The client's timeout in these tests (a 500-entry page takes the sandbox about 0.3 s).
KITSU_TIMEOUT = 1.5

LIBRARY = "/api/edge/library-entries"

# kind of fault -> its rule, and what the run's error must say
FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "500": ({"kind": "status", "status": 500}, "HTTP 500"),
    "502": ({"kind": "status", "status": 502}, "HTTP 502"),
    "503": ({"kind": "status", "status": 503}, "HTTP 503"),
    "429 plain text, no Retry-After": ({"kind": "rate_limit"}, "rate limiting"),
    "connection reset": ({"kind": "drop"}, "connection to Kitsu"),
    "hangs past the timeout": (
        {"kind": "slow", "seconds": 2 * KITSU_TIMEOUT},
        "within the timeout",
    ),
    "truncated JSON": ({"kind": "truncate"}, "not JSON"),
    "HTML error page": ({"kind": "html"}, "HTTP 502"),
}


def fault_mid_import(sandbox: Any, rule: dict[str, Any], *, count: int | None) -> None:
    """The fault fires from the second library page on (the first is stored by then)."""
    sandbox.set_faults([{**rule, "path": LIBRARY, "method": "GET", "after": 1, "count": count}])


def faults_fired(sandbox: Any) -> int:
    return sum(rule["fired"] for rule in sandbox.control("GET", "faults"))


def change_on_kitsu(sandbox: Any, entries: list[Any], note: str) -> set[int]:
    for entry in entries:
        kitsu_update_entry(sandbox, entry.id, {"notes": f"{note} ({entry.id})"})
    return {entry.id for entry in entries}
