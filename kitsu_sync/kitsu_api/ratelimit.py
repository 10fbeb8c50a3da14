"""A blocking rate limiter for Kitsu traffic that spaces requests evenly (GCRA).

The rule ("virtual scheduling", the generic cell rate algorithm): request slots are at least
`1 / (HEADROOM x rate)` seconds apart. The storage keeps one number per budget, the theoretical
arrival time (TAT) of the next free slot. `acquire` atomically reserves the slot at
max(TAT, now), moves the TAT one interval on, and sleeps until its slot: callers queue in
reservation order without polling, and an idle budget banks nothing, so there is no burst.

Requests that leave on time put at most floor(HEADROOM x rate) + 1 in any 1-second window,
which is within the limit for a whole-number rate, and the average is HEADROOM x the limit
while work remains. Below 1/s (0.5/s: one request every 2 / HEADROOM s) no 1-second window
holds more than one.

With `redis://...` storage every process using the same key and rate shares one budget, timed
by Redis' own clock (`TIME`) so that hosts need not agree on theirs; with `memory://` (the
embedded default) the threads of this process share it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import redis

from kitsu_sync.kitsu_api.errors import KitsuRateLimiterUnavailable, KitsuRateLimitTimeout

# Pace 5% under the limit: a request that leaves a little after its slot (descheduled worker,
# network jitter) must not bring the one after it into the same 1-second window as Kitsu sees
# it. 5% tolerates 1 / 0.95 - 1 = 53 ms of such lateness and keeps the average above 90%.
HEADROOM = 0.95

# KEYS[1]: the budget's TAT in microseconds of Redis' clock. ARGV[1]: microseconds between
# slots; ARGV[2]: the longest wait the caller accepts in microseconds, -1 for any.
# Returns {reserved (1 or 0), microseconds from now until the slot}.
_RESERVE_SLOT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local max_wait = tonumber(ARGV[2])
if max_wait >= 0 and slot - now > max_wait then
  return {0, slot - now}
end
local tat = slot + tonumber(ARGV[1])
-- Once the TAT has passed the key says nothing that max(TAT, now) needs: let it expire.
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {1, slot - now}
"""


class _MemorySlots:
    """The TAT as a float under a lock: shared by the threads of one process."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = -math.inf

    def reserve(self, interval: float, max_wait: float | None) -> tuple[bool, float]:
        with self._lock:
            now = self._clock()
            slot = max(self._tat, now)
            if max_wait is not None and slot - now > max_wait:
                return False, slot - now
            self._tat = slot + interval
            return True, slot - now


class _RedisSlots:
    """The TAT in a Redis key, read and moved by one Lua script: shared by every process."""

    def __init__(self, url: str, key: str) -> None:
        self._key = key
        self._client = redis.Redis.from_url(url)
        # EVALSHA, and a reload when Redis has forgotten the script (restart, SCRIPT FLUSH).
        self._script = self._client.register_script(_RESERVE_SLOT)

    def reserve(self, interval: float, max_wait: float | None) -> tuple[bool, float]:
        # Round the interval up and the accepted wait down: never faster, never later.
        interval_us = math.ceil(interval * 1_000_000)
        max_wait_us = -1 if max_wait is None else math.floor(max_wait * 1_000_000)
        reserved, wait_us = self._script(keys=[self._key], args=[interval_us, max_wait_us])
        return bool(reserved), wait_us / 1_000_000


class RateLimiter:
    """Hands out request slots spaced evenly at HEADROOM x `rate_per_second`.

    `clock` and `sleep` let tests run the memory storage without waiting; Redis storage keeps
    time with Redis' clock and ignores `clock`.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        storage_uri: str = "memory://",
        key: str = "kitsu-api",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not math.isfinite(rate_per_second) or rate_per_second <= 0:
            raise ValueError(f"The rate must be a positive number, not {rate_per_second!r}.")
        self.rate_per_second = rate_per_second
        self.interval = 1 / (rate_per_second * HEADROOM)
        self.key = key
        self._storage_scheme = storage_uri.split(":", 1)[0]
        self._sleep = sleep
        self._slots: _MemorySlots | _RedisSlots
        if self._storage_scheme == "memory":
            self._slots = _MemorySlots(clock)
        else:
            # The rate is part of the key, as it was with `limits`: limiters configured with
            # different rates (tests, benchmarks on one Redis) keep separate budgets.
            self._slots = _RedisSlots(storage_uri, f"kitsu-rate/{key}/{rate_per_second:g}")

    def __repr__(self) -> str:
        # The storage URI may carry a Redis password: show only its scheme.
        return (
            f"RateLimiter({self.rate_per_second:g}/s, one slot every {self.interval:.3g} s, "
            f"storage={self._storage_scheme}, key={self.key!r})"
        )

    def try_acquire(self) -> bool:
        """Take a slot if one is free right now; reserve nothing otherwise."""
        reserved, _ = self._reserve(max_wait=0.0)
        return reserved

    def acquire(self, timeout: float | None = None) -> None:
        """Reserve the next free slot and sleep until it.

        When that slot is more than `timeout` seconds away, reserve nothing and raise
        KitsuRateLimitTimeout at once.
        """
        reserved, wait = self._reserve(max_wait=None if timeout is None else max(timeout, 0.0))
        if not reserved:
            raise KitsuRateLimitTimeout(
                f"No Kitsu request slot is free within {timeout:g} s: the next is {wait:.3g} s "
                f"away (limit {self.rate_per_second:g} requests/s)."
            )
        if wait > 0:
            self._sleep(wait)

    def _reserve(self, *, max_wait: float | None) -> tuple[bool, float]:
        try:
            return self._slots.reserve(self.interval, max_wait)
        except redis.RedisError as exc:
            raise KitsuRateLimiterUnavailable(
                f"The Kitsu rate limiter's storage ({self._storage_scheme}) is unreachable."
            ) from exc


def make_rate_limiter(
    rate_per_second: float, redis_url: str | None, *, key: str = "kitsu-api"
) -> RateLimiter:
    """One limiter shared by all workers through Redis, or by this process without it."""
    return RateLimiter(rate_per_second, storage_uri=redis_url or "memory://", key=key)
