"""The loop every worker runs beside its Celery consumer: accept, claim due entities, publish.

Leader-free: every step is an atomic claim in Redis, so any number of workers can run it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from cmrelay.errors import DeliveryError
from worker.accept import BATCH_SIZE, accept_batch, reap_expired_claims
from worker.dlq import DeadLetterQueue
from worker.engine import Engine

log = logging.getLogger(__name__)

DUE_BATCH = 100  # entities claimed per tick
REAP_EVERY = 1.0  # seconds between sweeps for dead accepters and old dead letters

Publish = Callable[[Sequence[str]], None]


def claim_due(engine: Engine, limit: int = DUE_BATCH) -> list[str]:
    """Entities whose time has come, now claimed by us for the claim timeout."""
    raw = engine.scripts.run("due_claim", [engine.keys.due], [limit, engine.claim_timeout])
    return [e.decode() for e in raw]


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

    def __init__(self, engine: Engine, publish: Publish) -> None:
        self.engine = engine
        self.publish = publish
        self.dlq = DeadLetterQueue(engine.redis, engine.keys, engine.settings.dlq_retention)
        self._next_reap = 0.0

    def tick(self) -> bool:
        """Run every step once; True when there is probably more work right now."""
        now = time.monotonic()
        if now >= self._next_reap:
            self._next_reap = now + REAP_EVERY
            if reap_expired_claims(self.engine):
                log.warning("returned the batches of a dead accepter to the queue")
            self.dlq.purge(older_than=self.engine.settings.dlq_retention)
        accepted = accept_batch(self.engine)
        due = claim_due(self.engine)
        if due:
            self.publish(due)
        probe_if_paused(self.engine)
        return accepted >= BATCH_SIZE or len(due) >= DUE_BATCH

    def run(self, stop: threading.Event) -> None:
        """Tick until stopped; a failing tick (Redis down) is logged and retried after a pause."""
        interval = self.engine.settings.scheduler_interval
        while not stop.is_set():
            try:
                busy = self.tick()
            except Exception:
                log.exception("scheduler tick failed; retrying")
                stop.wait(1.0)
                continue
            if not busy:
                stop.wait(interval)
