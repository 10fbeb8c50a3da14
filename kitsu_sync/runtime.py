"""Process-level tuning for long-running sync work (Celery workers, `manage.py kitsu_sync`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_startup_objects() -> None:
    """Move everything alive now out of the garbage collector's sight, for good.

    Django, Celery and their imports leave a few hundred thousand long-lived objects; every full
    collection walks them all again, and an import of many pages triggers many. Frozen objects
    are never collected (they live as long as the process anyway), and in a forked pool child
    the collector no longer writes to their memory pages, so those stay shared with the parent.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """`freeze_startup_objects` for the length of a block (a command that may run in a process
    that goes on afterwards, such as a test run): the objects are handed back on the way out."""
    freeze_startup_objects()
    try:
        yield
    finally:
        gc.unfreeze()
