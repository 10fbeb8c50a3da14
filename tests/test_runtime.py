from __future__ import annotations

import gc
import weakref

from celery.signals import worker_process_init

from kitsu_sync.runtime import startup_objects_frozen
from revenge_site import celery


def test_objects_alive_at_start_are_frozen_for_the_block_and_handed_back_after():
    before = gc.get_freeze_count()  # not always 0: Python 3.12 started with a few hundred
    with startup_objects_frozen():
        assert gc.get_freeze_count() > before + 1000
    assert gc.get_freeze_count() == 0


def test_each_worker_pool_process_freezes_its_start_up_objects():
    receivers = [
        receiver() if isinstance(receiver, weakref.ReferenceType) else receiver
        for *_, receiver in worker_process_init.receivers
    ]
    assert celery.freeze_startup_objects in receivers
