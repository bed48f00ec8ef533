"""After a delivery commits: one log line per event outcome and the latency histogram."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from cmrelay.envelope import Envelope
from cmrelay.metrics_store import record_latencies
from worker.pipeline.engine import Engine

log = logging.getLogger("worker.deliver")
_QUIET = ("delivered", "unchanged", "skipped", "retrying")  # info; dead_lettered warns


def report_outcomes(engine: Engine, entity: str, outcomes: Sequence[tuple[Envelope, str]]) -> None:
    """Log each event's outcome (ids only, never trait values), time the delivered ones, and
    note it on the event's trail."""
    now = time.time()
    latencies = []
    for env, outcome in outcomes:
        level = logging.INFO if outcome in _QUIET else logging.WARNING
        log.log(level, "event %s", outcome, extra={"message_id": env.message_id,
                "entity": entity, "outcome": outcome, "type": env.event.get("type")})  # fmt: skip
        received = received_at(env) if outcome == "delivered" else None
        if received is not None:
            latencies.append(now - received)
    try:
        pipe = engine.redis.pipeline(transaction=False)
        record_latencies(pipe, engine.keys, latencies)
        ttl = int(engine.settings.trace_retention)
        if ttl > 0:  # the last step of each event's trail (`cmrelay trace`)
            stamp = f"{now:.3f}"
            for env, outcome in outcomes:
                key = engine.keys.trace(env.message_id)
                pipe.hset(key, mapping={"state": outcome, "outcome_at": stamp, "entity": entity})
                pipe.expire(key, ttl)
        pipe.execute()
    except Exception:  # a metric or a trail is not worth failing a committed delivery over
        log.warning("could not record delivery latency or trails", exc_info=True)


def received_at(env: Envelope) -> float | None:
    """When the ingest acknowledged the event (epoch seconds), or None if unreadable."""
    try:
        return datetime.fromisoformat(env.received_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
