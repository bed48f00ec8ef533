"""Retry delays: exponential with full jitter (AWS architecture blog), honouring Retry-After."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    Full jitter spreads many entities failing together (an outage) over the whole interval
    instead of sending them back in a thundering herd.
    """
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    delay = (rng or random).uniform(0.0, ceiling)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after)  # the server knows best, even past our cap
    return delay
