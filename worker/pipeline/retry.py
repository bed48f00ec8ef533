"""When to try a failed delivery again, and when to give up: the retry policy, in one place.

Which failures are worth retrying is decided where they are classified (worker.delivery.http
turns statuses and transport errors into RetryableDeliveryError or PermanentDeliveryError); this
module decides how long to wait and for how long to keep trying.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cmrelay.settings import Settings


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    Exponential with full jitter (AWS architecture blog): many entities failing together (an
    outage) spread over the whole interval instead of coming back as a thundering herd.
    """
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    delay = (rng or random).uniform(0.0, ceiling)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after)  # the server knows best, even past our cap
    return delay


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff (RETRY_BACKOFF_BASE doubling up to RETRY_BACKOFF_MAX) within RETRY_WINDOW."""

    base: float
    cap: float
    window: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy these settings describe."""
        return cls(settings.retry_backoff_base, settings.retry_backoff_max, settings.retry_window)

    def expired(self, first_failure: float, now: float) -> bool:
        """True once failures have lasted RETRY_WINDOW: the events go to the DLQ."""
        return now - first_failure >= self.window

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds until the next attempt after failed attempt number `attempt`."""
        return retry_delay(attempt, base=self.base, cap=self.cap, retry_after=retry_after)
