"""What the sandbox saw and what it breaks on purpose: the request counter and fault rules."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from kitsu_sync.sandbox.config import FaultRule


class RequestLog:
    """Counts of requests by route and status, and a bounded log of each request."""

    def __init__(self, size: int) -> None:
        self.lock = threading.Lock()
        self.size = size
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.total = 0
            self.by_route: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.entries: deque[tuple[float, str, str, str, int]] = deque(maxlen=self.size)

    def record(self, method: str, route: str, path: str, query: str, status: int) -> None:
        """`status` 0 means the connection was dropped without a response."""
        with self.lock:
            self.total += 1
            self.by_route[f"{method} {route}"] += 1
            self.by_status[str(status)] += 1
            self.entries.append((time.time(), method, path, query, status))

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total,
                "by_route": dict(sorted(self.by_route.items())),
                "by_status": dict(sorted(self.by_status.items())),
            }

    def requests(self, *, path: str | None = None, limit: int | None = None) -> list[dict]:
        with self.lock:
            rows = list(self.entries)
        if path:
            rows = [row for row in rows if row[2].startswith(path)]
        if limit is not None:
            rows = rows[-limit:] if limit > 0 else []
        return [
            {"t": t, "method": method, "path": p, "query": query, "status": status}
            for t, method, p, query, status in rows
        ]


class FaultInjector:
    """Decides, request by request, whether a fault rule fires."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self.lock = threading.Lock()
        self.set_rules(rules)

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        with self.lock:
            self.rules = list(rules)
            self.skipped = [0] * len(self.rules)
            self.fired = [0] * len(self.rules)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (its counters move under the lock)."""
        with self.lock:
            for index, rule in enumerate(self.rules):
                if not path.startswith(rule.path):
                    continue
                if rule.method is not None and rule.method != method:
                    continue
                if rule.count is not None and self.fired[index] >= rule.count:
                    continue
                if self.skipped[index] < rule.after:
                    self.skipped[index] += 1
                    continue
                self.fired[index] += 1
                return rule
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {**rule.to_dict(), "skipped": skipped, "fired": fired}
                for rule, skipped, fired in zip(self.rules, self.skipped, self.fired, strict=True)
            ]
