"""Retry delays: full jitter under an exponential ceiling, capped, Retry-After honoured."""

from __future__ import annotations

import random

from worker.pipeline.retry import retry_delay


def test_delay_stays_under_the_exponential_ceiling_and_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 30):
        delay = retry_delay(attempt, base=1.0, cap=600.0, rng=rng)
        assert 0.0 <= delay <= min(600.0, 2 ** (attempt - 1))


def test_jitter_spreads_delays() -> None:
    rng = random.Random(1)
    delays = {round(retry_delay(8, base=1.0, cap=600.0, rng=rng), 3) for _ in range(50)}
    assert len(delays) > 40


def test_retry_after_is_a_floor_even_past_the_cap() -> None:
    assert retry_delay(1, base=1.0, cap=10.0, retry_after=3600) == 3600
    assert retry_delay(1, base=1.0, cap=10.0, retry_after=5) >= 5
