from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from itertools import pairwise

import pytest
import redis

from kitsu_sync.kitsu_api import (
    KitsuRateLimiterUnavailable,
    KitsuRateLimitTimeout,
    RateLimiter,
    make_rate_limiter,
)
from kitsu_sync.kitsu_api.ratelimit import limit_item_for
from tests.kitsu_api.conftest import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/15"
# Timestamps are taken just after acquire() returns, a hair later than the limiter's own.
WINDOW = 0.95


def busiest_second(stamps: list[float]) -> int:
    """The most timestamps that fall within any WINDOW-long span."""
    ordered = sorted(stamps)
    return max(
        sum(1 for later in ordered[i:] if later - start < WINDOW) for i, start in enumerate(ordered)
    )


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fake clock for the limiter and for `limits`' memory storage.

    The memory storage reads `time.time()` itself; pointing its module's `time` at the fake
    lets tests cover waits of seconds without waiting.
    """
    clock = FakeClock()
    monkeypatch.setattr("limits.storage.memory.time", clock)
    return clock


@pytest.fixture
def unique_key() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.mark.parametrize(
    ("rate", "amount", "seconds"),
    [(10, 10, 1), (20.0, 20, 1), (2.5, 2, 1), (0.5, 1, 2), (0.1, 1, 10), (0.3, 1, 4)],
)
def test_rates_become_moving_windows_that_never_run_faster(
    rate: float, amount: int, seconds: int
) -> None:
    item = limit_item_for(rate)

    assert (item.amount, item.get_expiry()) == (amount, seconds)
    assert item.amount / item.get_expiry() <= rate


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_a_nonsense_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate)


def test_a_burst_up_to_the_rate_passes_without_waiting(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(5, clock=fake_clock.time, sleep=fake_clock.sleep)

    for _ in range(5):
        limiter.acquire()

    assert fake_clock.sleeps == []


def test_the_next_slot_waits_until_the_oldest_leaves_the_window(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(5, clock=fake_clock.time, sleep=fake_clock.sleep)
    started = fake_clock.now
    for _ in range(5):
        limiter.acquire()
        fake_clock.now += 0.1

    limiter.acquire()

    # The first slot was taken at `started`; it frees just after started + 1 s.
    assert 1.0 <= fake_clock.now - started <= 1.05


def test_a_fractional_rate_spaces_requests_out(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(0.5, clock=fake_clock.time, sleep=fake_clock.sleep)
    stamps = []
    for _ in range(4):
        limiter.acquire()
        stamps.append(fake_clock.now)

    gaps = [later - earlier for earlier, later in pairwise(stamps)]
    assert all(2.0 <= gap <= 2.05 for gap in gaps)


def test_acquire_gives_up_at_the_timeout(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(1, clock=fake_clock.time, sleep=fake_clock.sleep)
    limiter.acquire()
    started = fake_clock.now

    with pytest.raises(KitsuRateLimitTimeout, match=r"within 0\.4 s") as caught:
        limiter.acquire(timeout=0.4)

    assert caught.value.retryable is True
    assert fake_clock.now - started == pytest.approx(0.4)


def test_the_memory_limiter_holds_across_threads() -> None:
    limiter = RateLimiter(20, key=f"threads-{uuid.uuid4().hex}")
    stamps: list[float] = []
    lock = threading.Lock()

    def take(slots: int) -> None:
        for _ in range(slots):
            limiter.acquire(timeout=10)
            with lock:
                stamps.append(time.time())

    workers = [threading.Thread(target=take, args=(15,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)

    assert len(stamps) == 30
    assert busiest_second(stamps) <= 20
    # 20 slots go at once; the other 10 wait for the window to move on.
    assert max(stamps) - min(stamps) >= WINDOW


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        pytest.fail(f"These tests need Redis at {REDIS_URL} (scripts/ensure-services starts it).")
    yield connection
    connection.close()


ACQUIRE_SCRIPT = """
import json, sys, time
from kitsu_sync.kitsu_api.ratelimit import RateLimiter
limiter = RateLimiter(float(sys.argv[1]), storage_uri=sys.argv[2], key=sys.argv[3])
stamps = []
for _ in range(int(sys.argv[4])):
    limiter.acquire(timeout=20)
    stamps.append(time.time())
print(json.dumps(stamps))
"""


def test_the_redis_limiter_is_shared_by_processes(redis_db: redis.Redis, unique_key: str) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", ACQUIRE_SCRIPT, "20", REDIS_URL, unique_key, "15"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    stamps: list[float] = []
    for worker in workers:
        output, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        stamps += json.loads(output)

    assert len(stamps) == 30
    assert busiest_second(stamps) <= 20
    assert max(stamps) - min(stamps) >= WINDOW


def test_two_redis_limiters_with_one_key_share_one_budget(
    redis_db: redis.Redis, unique_key: str
) -> None:
    first = make_rate_limiter(3, REDIS_URL, key=unique_key)
    second = make_rate_limiter(3, REDIS_URL, key=unique_key)

    taken = [first.try_acquire(), second.try_acquire(), first.try_acquire()]

    assert taken == [True, True, True]
    assert second.try_acquire() is False
    assert any(unique_key in key.decode() for key in redis_db.keys("*"))


def test_make_rate_limiter_stays_in_process_without_redis(unique_key: str) -> None:
    first = make_rate_limiter(1, None, key=unique_key)
    second = make_rate_limiter(1, "", key=unique_key)

    # Each memory limiter has its own budget: share one instance within a process.
    assert first.try_acquire() is True
    assert second.try_acquire() is True
    assert first.try_acquire() is False


def test_an_unreachable_redis_is_a_typed_error_without_the_password(unique_key: str) -> None:
    limiter = RateLimiter(10, storage_uri="redis://:pa55word@127.0.0.1:1/0", key=unique_key)

    with pytest.raises(KitsuRateLimiterUnavailable) as caught:
        limiter.acquire(timeout=1)

    assert "pa55word" not in str(caught.value)
    assert "pa55word" not in repr(limiter)
