"""Time for tests: a clock that moves only when told to, and a sleep that only records."""

from __future__ import annotations


class FakeClock:
    """Seconds since the epoch that move only by `advance` or `sleep`.

    Call it (or its `time`) where a clock function is wanted, such as SandboxConfig(clock=...)
    or RateLimiter(clock=...); its `sleep` records the wait and moves the clock on by it.
    """

    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingSleep:
    """A `sleep` that returns at once and remembers how long it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
