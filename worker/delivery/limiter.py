"""The global RequestGate in Redis: GCRA rate limit, leased in-flight semaphore, shared blocks.

Every worker process on every host goes through the same three keys, so the limits hold for the
relay as a whole (Celery's own rate_limit is per worker and cannot).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from cmrelay.errors import RetryableDeliveryError
from cmrelay.lua import Scripts
from cmrelay.metrics_store import counter_field
from cmrelay.settings import Settings

DECREASE = 0.5  # multiplicative decrease on 429
MIN_FACTOR = 0.1  # never below a tenth of the configured rate
RECOVER_PER_SECOND = 0.05  # additive increase: +5 % of the rate per second after a cut
DEFAULT_BLOCK = 1.0  # seconds everyone waits after a 429/503 without Retry-After
# A grant may come this early against the GCRA schedule, so a waiter's wake-up lag does not
# push every later grant back; the spacing grows by tolerance/rate to keep the 1 s bound.
TOLERANCE_US = 1000  # measured lag is ~0.7 ms a grant on a loaded 2-core VM
# After a live event is accepted or a live request granted, live traffic counts as waiting for
# this long: past coalescing and one request, short enough that a backfill soon gets it all.
LIVE_HOLD = 5.0

Lane = Literal["live", "backfill"]
_LANE: ContextVar[Lane] = ContextVar("cmrelay_delivery_lane", default="live")


@contextmanager
def delivery_lane(lane: Lane) -> Iterator[None]:
    """Requests made inside go through this lane of the gate (the deliver step sets it from the
    envelopes' origin: an entity holding only backfilled events is the backfill lane)."""
    reset = _LANE.set(lane)
    try:
        yield
    finally:
        _LANE.reset(reset)


@dataclass(frozen=True)
class Grant:
    """One request's permission: its slot token and when (Redis clock, us) it was granted."""

    token: str
    granted_at_us: int


class RedisRequestGate:
    """The RequestGate (worker.delivery.contract) for every process sharing one Redis."""

    def __init__(
        self,
        scripts: Scripts,
        *,
        rate: float,
        max_in_flight: int,
        slot_ttl: float,
        max_wait: float = 30.0,
        tolerance_us: int = TOLERANCE_US,
        backfill_share: float = 1.0,
        live_hold: float = LIVE_HOLD,
    ) -> None:
        self._scripts = scripts
        self._keys = scripts.keys
        self.rate = rate
        self.max_in_flight = max_in_flight
        self._slot_ttl_us = int(slot_ttl * 1_000_000)
        self._max_wait = max_wait
        self._tolerance_us = tolerance_us
        self.backfill_share = backfill_share
        self._live_hold_ms = int(live_hold * 1000)

    @classmethod
    def from_settings(cls, settings: Settings, scripts: Scripts) -> RedisRequestGate:
        """Limits from settings; a slot outlives the request timeout by a margin."""
        return cls(
            scripts,
            rate=settings.rate_limit,
            max_in_flight=settings.max_in_flight,
            slot_ttl=settings.request_timeout + 5.0,
            backfill_share=settings.backfill_rate_share,
        )

    def try_acquire(self) -> tuple[Grant | None, float]:
        """One attempt: a Grant, or None and the seconds worth waiting before the next try."""
        token = secrets.token_hex(8)
        granted, value = self._scripts.limiter_acquire(
            token,
            rate=self.rate,
            max_in_flight=self.max_in_flight,
            slot_ttl_us=self._slot_ttl_us,
            recover_per_second=RECOVER_PER_SECOND,
            tolerance_us=self._tolerance_us,
            lane=_LANE.get(),
            backfill_share=self.backfill_share,
            live_hold_ms=self._live_hold_ms,
        )
        if granted:
            return Grant(token, value), 0.0
        return None, value / 1_000_000

    def acquire_grant(self) -> Grant:
        """Block until granted; past max_wait raise RetryableDeliveryError so the entity is
        re-scheduled instead of holding a worker thread through a long Retry-After."""
        started = time.monotonic()
        deadline = started + self._max_wait
        while True:
            grant, wait = self.try_acquire()
            if grant is not None:
                if time.monotonic() > started + 0.001:  # it waited: count it, with how long
                    self._count_wait(time.monotonic() - started)
                return grant
            if time.monotonic() + wait > deadline:
                self._count_wait(time.monotonic() - started)
                raise RetryableDeliveryError(
                    "delivery is held back by the shared rate limit", retry_after=wait
                )
            time.sleep(min(wait, 0.25))

    def _count_wait(self, seconds: float) -> None:
        pipe = self._scripts.client.pipeline(transaction=False)
        pipe.hincrby(self._keys.metrics, counter_field("rate_limit_waits"), 1)
        pipe.hincrby(self._keys.metrics, counter_field("rate_limit_wait_ms"), int(seconds * 1000))
        pipe.execute()

    def release(self, grant: Grant) -> None:
        """Give the in-flight slot back (the rate token stays spent)."""
        self._scripts.limiter_release(grant.token)

    @contextmanager
    def acquire(self) -> Iterator[None]:
        """RequestGate.acquire: hold a rate token and an in-flight slot around one request."""
        grant = self.acquire_grant()
        try:
            yield None
        finally:
            self.release(grant)

    def observe(self, status: int | None, retry_after: float | None) -> None:
        """RequestGate.observe: 429/503 slow every worker down; every status is counted."""
        field = counter_field("chartmogul_responses", "none" if status is None else str(status))
        self._scripts.client.hincrby(self._keys.metrics, field, 1)
        if status not in (429, 503):
            return
        block = retry_after if retry_after is not None and retry_after > 0 else DEFAULT_BLOCK
        self._scripts.limiter_observe(
            status=status,
            block_us=int(block * 1_000_000),
            decrease=DECREASE,
            min_factor=MIN_FACTOR,
            recover_per_second=RECOVER_PER_SECOND,
        )
