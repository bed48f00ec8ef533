"""The loop every worker runs beside its Celery consumer: accept, claim due entities, publish.

Leader-free: every step is an atomic claim in Redis, so any number of workers can run it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.errors import DeliveryError
from worker.pipeline.accept import BATCH_SIZE, accept_batch, reap_expired_claims
from worker.pipeline.engine import Engine

log = logging.getLogger(__name__)

DUE_BATCH = 100  # entities claimed per tick
# Claim no more while this many deliver tasks wait in the broker: a claimed entity comes back
# after VISIBILITY_TIMEOUT, so over-publishing into a backlog would only publish it twice.
MAX_QUEUED = 200
REAP_EVERY = 1.0  # seconds between sweeps for dead accepters and old dead letters
BACKLOG_EVERY = 0.25  # seconds between broker queue-length checks (each costs a channel)

Publish = Callable[[Sequence[str]], None]
Backlog = Callable[[], int]  # deliver tasks waiting in the broker


def claim_due(engine: Engine, limit: int = DUE_BATCH) -> list[str]:
    """Entities whose time has come, now claimed by us for the claim timeout."""
    return engine.scripts.due_claim(limit=limit, claim_seconds=engine.claim_timeout)


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
        self._queued = 0
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
        due: list[str] = []
        if self.engine.redis.exists(self.engine.keys.pause):
            # Paused: leave entities in the due set (no task churn) until a probe succeeds.
            probe_if_paused(self.engine)
        elif self._queued_now(now) < MAX_QUEUED:
            due = claim_due(self.engine)
            if due:
                self.publish(due)
                self._queued += len(due)
        return accepted >= BATCH_SIZE or len(due) >= DUE_BATCH

    def _queued_now(self, now: float) -> int:
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
