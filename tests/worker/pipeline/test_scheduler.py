"""The scheduler tick: accept, then publish due entities unless paused or the broker is full."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from tests.support.events import envelope
from tests.support.scripted import ScriptedDeliverer
from worker.pipeline.engine import Engine
from worker.pipeline.scheduler import MAX_QUEUED, Queued, Scheduler

NOTHING_QUEUED = Queued(0, 0)


def _scheduler(engine: Engine, published: list[str], queued: Queued = NOTHING_QUEUED) -> Scheduler:
    def publish(entities: Sequence[str], _backfill: bool) -> None:
        published.extend(entities)

    return Scheduler(engine, publish, lambda: queued)


def test_a_tick_accepts_and_publishes_what_is_due(engine: Engine, client: redis.Redis) -> None:
    published: list[str] = []
    client.lpush(engine.keys.ingest_queue, envelope(user_id="a"), envelope(user_id="b"))
    _scheduler(engine, published).tick()
    assert sorted(published) == ["customer:a", "customer:b"]  # coalesce window 0 in tests


def test_nothing_is_published_while_the_broker_queue_is_full(
    engine: Engine, client: redis.Redis
) -> None:
    published: list[str] = []
    client.lpush(engine.keys.ingest_queue, envelope(user_id="a"))
    _scheduler(engine, published, queued=Queued(MAX_QUEUED)).tick()
    assert published == []
    assert client.zscore(engine.keys.due, "customer:a") is not None  # still due, not lost


def test_while_paused_entities_stay_due_and_a_probe_runs(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    published: list[str] = []
    client.set(engine.keys.pause, "401")
    client.lpush(engine.keys.ingest_queue, envelope(user_id="a"))
    _scheduler(engine, published).tick()
    assert published == [] and deliverer.probes == 1
    assert client.get(engine.keys.pause) is None  # the probe succeeded
    _scheduler(engine, published).tick()
    assert published == ["customer:a"]
