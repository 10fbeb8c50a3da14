"""A blocking rate limiter for Kitsu traffic, built on the `limits` library's moving window.

With `redis://...` storage every process that uses the same key shares one budget; with
`memory://` (the embedded default) the budget is shared by the threads of this process.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from kitsu_sync.kitsu_api.errors import KitsuRateLimiterUnavailable, KitsuRateLimitTimeout

# Never sleep less than this between two tries, so that a clock edge cannot make us spin.
_MIN_WAIT = 0.005


def limit_item_for(rate_per_second: float) -> RateLimitItem:
    """The moving-window limit that never lets more than `rate_per_second` through per second.

    `limits` counts whole requests over whole seconds, so rates round towards slower:
    10/s -> 10 per 1 s; 2.5/s -> 2 per 1 s; 0.5/s -> 1 per 2 s; 0.3/s -> 1 per 4 s.
    """
    if not math.isfinite(rate_per_second) or rate_per_second <= 0:
        raise ValueError(f"The rate must be a positive number, not {rate_per_second!r}.")
    if rate_per_second >= 1:
        return RateLimitItemPerSecond(math.floor(rate_per_second), 1)
    # The small epsilon keeps 1/0.1 == 10.000000000000002 from becoming 11 seconds.
    return RateLimitItemPerSecond(1, math.ceil(1 / rate_per_second - 1e-9))


class RateLimiter:
    """Hands out request slots so that no moving 1-second window exceeds the rate."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        storage_uri: str = "memory://",
        key: str = "kitsu-api",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate_per_second = rate_per_second
        self.item = limit_item_for(rate_per_second)
        self.key = key
        self._storage_scheme = storage_uri.split(":", 1)[0]
        # wrap_exceptions turns every backend failure into limits' StorageError.
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(storage_uri, wrap_exceptions=True)
        )
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        # The storage URI may carry a Redis password: show only its scheme.
        return (
            f"RateLimiter({self.rate_per_second}/s as {self.item.amount} per "
            f"{self.item.get_expiry()} s, storage={self._storage_scheme}, key={self.key!r})"
        )

    def try_acquire(self) -> bool:
        """Take a slot if one is free right now."""
        try:
            return self._limiter.hit(self.item, self.key)
        except StorageError as exc:
            raise KitsuRateLimiterUnavailable(
                f"The Kitsu rate limiter's storage ({self._storage_scheme}) is unreachable."
            ) from exc

    def acquire(self, timeout: float | None = None) -> None:
        """Block until a slot is free; raise KitsuRateLimitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else self._clock() + timeout
        while not self.try_acquire():
            wait = self._wait_for_free_slot()
            if deadline is not None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise KitsuRateLimitTimeout(
                        f"No Kitsu request slot became free within {timeout:g} s "
                        f"(limit {self.rate_per_second:g} requests/s)."
                    )
                wait = min(wait, remaining)
            self._sleep(wait)

    def _wait_for_free_slot(self) -> float:
        """Seconds until the oldest request in the window leaves it, bounded to sane values."""
        try:
            reset_at = self._limiter.get_window_stats(self.item, self.key).reset_time
        except StorageError as exc:
            raise KitsuRateLimiterUnavailable(
                f"The Kitsu rate limiter's storage ({self._storage_scheme}) is unreachable."
            ) from exc
        # Wake just past the boundary: `limits` still counts an entry exactly `expiry` old
        # when acquiring. Another worker may take the slot first; then we wait for the next.
        wait = max(reset_at - self._clock(), 0.0) + _MIN_WAIT
        return min(wait, float(self.item.get_expiry()))


def make_rate_limiter(
    rate_per_second: float, redis_url: str | None, *, key: str = "kitsu-api"
) -> RateLimiter:
    """One limiter shared by all workers through Redis, or by this process without it."""
    return RateLimiter(rate_per_second, storage_uri=redis_url or "memory://", key=key)
