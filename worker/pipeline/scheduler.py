"""The loop every worker runs beside its Celery consumer: accept, claim due entities, publish.

Leader-free: every step is an atomic claim in Redis, so any number of workers can run it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.errors import DeliveryError
from worker.pipeline.accept import BATCH_SIZE, accept_batch, reap_expired_claims
from worker.pipeline.engine import Engine

log = logging.getLogger(__name__)

DUE_BATCH = 100  # entities claimed per tick
# Claim no more while this many deliver tasks wait in the broker: a claimed entity comes back
# after VISIBILITY_TIMEOUT, so over-publishing into a backlog would only publish it twice.
MAX_QUEUED = 200
# While live events wait (the limiter's live_waiting key), claim entities without live events
# only while fewer tasks than this wait in the broker (about one per worker thread): backfill
# deliveries then never stand hundreds deep between a live entity and a free thread.
BACKFILL_QUEUED_WHILE_LIVE = 8
REAP_EVERY = 1.0  # seconds between sweeps for dead accepters and old dead letters
BACKLOG_EVERY = 0.25  # seconds between broker queue-length checks (each costs a channel)

# publish(entities, backfill): backfill=True for entities without live events (the broker
# hands them out after live ones).
Publish = Callable[[Sequence[str], bool], None]


class Queued(NamedTuple):
    """Deliver tasks waiting in the broker: live ones, and backfill-only ones behind them."""

    live: int
    backfill: int = 0


Backlog = Callable[[], Queued]  # deliver tasks waiting in the broker


def backfill_room(queued: int, *, live_waiting: bool) -> int:
    """How many entities without live events to claim with `queued` tasks in the broker."""
    cap = BACKFILL_QUEUED_WHILE_LIVE if live_waiting else MAX_QUEUED
    return max(0, min(DUE_BATCH, cap - queued))


def probe_if_paused(engine: Engine) -> bool | None:
    """When paused, let one worker per interval probe; a success resumes delivery for all.

    Returns None when not paused (or not our turn), else whether the probe succeeded.
    """
    keys, client = engine.keys, engine.redis
    if not client.exists(keys.pause):
        return None
    interval_ms = int(engine.settings.pause_probe_interval * 1000)
    if not client.set(keys.pause_probe, "1", nx=True, px=interval_ms):
        return None
    try:
        engine.deliverer.probe()
    except DeliveryError as exc:
        log.warning("delivery still paused: probe failed with %s", exc.error_class)
        return False
    client.delete(keys.pause)
    log.warning("delivery resumed: the probe succeeded")
    return True


class Scheduler:
    """One tick = reap, accept a batch, publish deliver tasks for due entities, maybe probe."""

    def __init__(self, engine: Engine, publish: Publish, backlog: Backlog | None = None) -> None:
        self.engine = engine
        self.publish = publish
        self.backlog = backlog
        self._queued = Queued(0, 0)
        self._next_backlog = 0.0
        self.dlq = DeadLetterQueue(engine.redis, engine.keys, engine.settings.dlq_retention)
        self._next_reap = 0.0
        self.last_tick = time.time()  # wall clock of the last completed tick (heartbeat)

    def tick(self) -> bool:
        """Run every step once; True when there is probably more work right now."""
        now = time.monotonic()
        if now >= self._next_reap:
            self._next_reap = now + REAP_EVERY
            if reap_expired_claims(self.engine):
                log.warning("returned the batches of a dead accepter to the queue")
            self.dlq.purge(older_than=self.engine.settings.dlq_retention)
        accepted = accept_batch(self.engine)
        claimed = 0
        keys = self.engine.keys
        if self.engine.redis.exists(keys.pause):
            # Paused: leave entities in the due set (no task churn) until a probe succeeds.
            probe_if_paused(self.engine)
        else:
            # Live claims are bounded by the live tasks queued only: workers take those before
            # any backfill task, so a backfill's full queue never holds a live entity back.
            queued = self._queued_now(now)
            live_room = DUE_BATCH if queued.live < MAX_QUEUED else 0
            live_waiting = bool(self.engine.redis.exists(keys.live_waiting))
            room = backfill_room(queued.live + queued.backfill, live_waiting=live_waiting)
            if live_room or room:
                claimed = self._claim_and_publish(room, live_room)
        return accepted >= BATCH_SIZE or claimed >= DUE_BATCH

    def _claim_and_publish(self, backfill_limit: int, live_limit: int = DUE_BATCH) -> int:
        """Claim up to `live_limit` live entities first, then up to `backfill_limit` others (in
        due order: a live one among them still goes out as live); publish each kind."""
        claim = self.engine.scripts.due_claim(
            limit=backfill_limit, live_limit=live_limit, claim_seconds=self.engine.claim_timeout
        )
        if claim.live:
            self.publish(claim.live, False)
        if claim.backfill:
            self.publish(claim.backfill, True)
        self._queued = Queued(
            self._queued.live + len(claim.live), self._queued.backfill + len(claim.backfill)
        )
        return len(claim.live) + len(claim.backfill)

    def _queued_now(self, now: float) -> Queued:
        if self.backlog is not None and now >= self._next_backlog:
            self._next_backlog = now + BACKLOG_EVERY
            self._queued = self.backlog()
        return self._queued

    def run(self, stop: threading.Event) -> None:
        """Tick until stopped; a failing tick (Redis down) is logged and retried after a pause."""
        interval = self.engine.settings.scheduler_interval
        while not stop.is_set():
            try:
                busy = self.tick()
                self.last_tick = time.time()
            except Exception:
                log.exception("scheduler tick failed; retrying")
                stop.wait(1.0)
                continue
            if not busy:
                stop.wait(interval)
