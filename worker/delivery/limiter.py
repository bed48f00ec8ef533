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
# ChartMogul counts a request when it arrives, the gate when it grants: every millisecond
# between the two eats into the ~25 ms by which 39/s stays under 40 in any second. A thread
# that gets its grant late (GIL, descheduled; measured up to 32 ms on a loaded 2-core VM, p999
# 7 ms) would send it late and bunch it against the next second's grants, so a grant is only
# sent within this many seconds of being asked for; an older one is given up and asked again.
MAX_GRANT_AGE = 0.010
# A backfill-lane delivery whose first request would wait longer than this for its grant gives
# its entity back (LaneYieldError) instead of holding a worker thread that live deliveries need.
# Only before the first grant: once a delivery has made a call it finishes what it started, at
# the full rate (measured: throttled to the lane's share, 8 started backfill deliveries held
# every thread for ~20 s when live traffic began, and the first live events waited that long).
LANE_GIVE_BACK = 1.0

Lane = Literal["live", "backfill"]
# The lane a request asks the gate for: a backfill delivery that has had its first grant asks
# as "started", outside the lane's share, so it finishes soon and frees its thread for live work.
GateLane = Literal["live", "backfill", "started"]


class LaneYieldError(RetryableDeliveryError):
    """The backfill lane is throttled: hand the entity back for `retry_after` seconds. Not a
    failure: no attempt is counted and the retry window does not start (worker.pipeline)."""


@dataclass
class _GiveBack:
    """A delivery that may give its entity back while it has had no grant yet."""

    granted: bool = False


_LANE: ContextVar[Lane] = ContextVar("cmrelay_delivery_lane", default="live")
_GIVE_BACK: ContextVar[_GiveBack | None] = ContextVar("cmrelay_lane_give_back", default=None)
_PERMIT: ContextVar[Permit | None] = ContextVar("cmrelay_delivery_permit", default=None)


@contextmanager
def delivery_lane(lane: Lane, *, give_back: bool = False) -> Iterator[None]:
    """Requests made inside go through this lane of the gate (the deliver step sets it from the
    envelopes' origin: an entity holding only backfilled events is the backfill lane). With
    `give_back`, a backfill-lane first request that would wait long raises LaneYieldError."""
    reset = _LANE.set(lane)
    reset_give_back = _GIVE_BACK.set(_GiveBack() if give_back and lane == "backfill" else None)
    try:
        yield
    finally:
        _GIVE_BACK.reset(reset_give_back)
        _LANE.reset(reset)


@dataclass(frozen=True)
class Grant:
    """One request's permission: its slot token, when (Redis clock, us) it was granted, and
    when (this process's monotonic clock) it was asked for."""

    token: str
    granted_at_us: int
    asked_at: float = 0.0


class Permit:
    """The grant held by the request this thread is about to send (replaced when it ages)."""

    def __init__(self, gate: RedisRequestGate, grant: Grant) -> None:
        self.gate = gate
        self.grant = grant

    def refresh(self) -> None:
        """Right before the request is written: swap a grant older than MAX_GRANT_AGE."""
        while time.monotonic() - self.grant.asked_at > self.gate.max_grant_age:
            self.gate.count("rate_limit_stale_grants")
            self.gate.release(self.grant)
            self.grant = self.gate.acquire_grant()


def refresh_permit(_request: object) -> None:
    """An httpx request hook: the gate's grant is fresh when the request goes on the wire."""
    permit = _PERMIT.get()
    if permit is not None:
        permit.refresh()


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
        max_grant_age: float = MAX_GRANT_AGE,
        lane_give_back: float = LANE_GIVE_BACK,
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
        self.max_grant_age = max_grant_age
        self.lane_give_back = lane_give_back

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
        asked_at = time.monotonic()
        granted, value = self._scripts.limiter_acquire(
            token,
            rate=self.rate,
            max_in_flight=self.max_in_flight,
            slot_ttl_us=self._slot_ttl_us,
            recover_per_second=RECOVER_PER_SECOND,
            tolerance_us=self._tolerance_us,
            lane=self._gate_lane(),
            backfill_share=self.backfill_share,
            live_hold_ms=self._live_hold_ms,
        )
        if granted:
            return Grant(token, value, asked_at), 0.0
        return None, value / 1_000_000

    @staticmethod
    def _gate_lane() -> GateLane:
        give_back = _GIVE_BACK.get()
        if give_back is not None and give_back.granted:
            return "started"
        return _LANE.get()

    def acquire_grant(self) -> Grant:
        """Block until granted; past max_wait raise RetryableDeliveryError so the entity is
        re-scheduled instead of holding a worker thread through a long Retry-After. The first
        request of a give-back delivery in the backfill lane waits at most `lane_give_back`."""
        give_back = _GIVE_BACK.get()
        yields = give_back is not None and not give_back.granted
        started = time.monotonic()
        budget = min(self._max_wait, self.lane_give_back) if yields else self._max_wait
        deadline = started + budget
        while True:
            grant, wait = self.try_acquire()
            if grant is not None:
                if give_back is not None:
                    give_back.granted = True
                if time.monotonic() > started + 0.001:  # it waited: count it, with how long
                    self._count_wait(time.monotonic() - started)
                return grant
            if time.monotonic() + wait > deadline:
                self._count_wait(time.monotonic() - started)
                if yields:
                    raise LaneYieldError(
                        "the backfill lane yields to live traffic", retry_after=wait
                    )
                raise RetryableDeliveryError(
                    "delivery is held back by the shared rate limit", retry_after=wait
                )
            time.sleep(min(wait, 0.25))

    def count(self, name: str) -> None:
        """Bump one of the gate's relay-wide counters."""
        self._scripts.client.hincrby(self._keys.metrics, counter_field(name), 1)

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
        """RequestGate.acquire: hold a rate token and an in-flight slot around one request; a
        client with `refresh_permit` as request hook renews a grant that aged before sending."""
        permit = Permit(self, self.acquire_grant())
        reset = _PERMIT.set(permit)
        try:
            yield None
        finally:
            _PERMIT.reset(reset)
            self.release(permit.grant)

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
