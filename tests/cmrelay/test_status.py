"""The engine status snapshot reflects queues, pause, limiter and counters."""

from __future__ import annotations

import redis

from cmrelay.status import engine_status
from tests.support.events import envelope
from worker.pipeline.accept import accept_batch
from worker.pipeline.engine import Engine


def test_status_counts_queues_pause_and_limits(engine: Engine, client: redis.Redis) -> None:
    client.lpush(engine.keys.ingest_queue, envelope(user_id="a"), envelope(user_id="b"))
    accept_batch(engine, limit=1)
    engine.gate.observe(429, 30.0)
    client.set(engine.keys.pause, "HTTP 401 from ChartMogul")
    status = engine_status(client, engine.keys)
    assert (status.ingest_depth, status.due, status.overdue) == (1, 1, 1)
    assert 29 < status.blocked_for <= 30 and status.rate_factor == 0.5
    assert status.paused == "HTTP 401 from ChartMogul"
    assert status.counters == {"accepted": 1} and status.dead_letters == 0
