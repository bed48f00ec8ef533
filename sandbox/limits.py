"""ChartMogul's two request limits: a 1 s sliding window per key (429) and parallelism (503)."""

from __future__ import annotations

import time
from bisect import insort
from collections import deque
from collections.abc import Callable

RATE_LIMITED = {
    "code": 429,
    "message": "Your request rate has exceeded our rate limit.",
    "param": None,
}
TOO_MANY_PARALLEL = {
    "code": 503,
    "message": "Too many parallel connections.",
    "param": None,
}


class RateLimiter:
    """More than `limit` requests from one key in any `window` seconds are refused; 0 = off."""

    def __init__(
        self, limit: int, window: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str, arrived: float | None = None) -> bool:
        """Count this request if it is within the limit; refused requests are not counted.
        `arrived` (this limiter's clock) is when its first byte came in: an edge limiter counts
        requests there, not after the body was read."""
        if self.limit <= 0:
            return True
        now = self._clock() if arrived is None else arrived
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if sum(1 for t in seen if t > now - self.window) >= self.limit:
            return False
        # Arrivals are counted in arrival order even when read out of order.
        insort(seen, now)
        return True

    def reset(self) -> None:
        """Forget every request seen so far."""
        self._seen.clear()


class InFlight:
    """At most `limit` requests at once; 0 = off. Used from one event loop, so no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current = 0
        self.peak = 0

    def acquire(self) -> bool:
        """Take a slot, or False when all are taken."""
        if self.limit > 0 and self.current >= self.limit:
            return False
        self.current += 1
        self.peak = max(self.peak, self.current)
        return True

    def release(self) -> None:
        """Give a slot back."""
        self.current -= 1
