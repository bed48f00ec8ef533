"""Live-first claiming against real Redis and the real scripts: the `due:live` hint, the
scheduler's backfill cap while live events wait, broker priority, and the backfill lane's
give-back (no attempt counted, entity due again, lease released)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
import pytest
import redis

from cmrelay.envelope import ORIGIN_BACKFILL
from cmrelay.settings import Settings
from tests.support.events import envelope
from tests.support.scripted import ScriptedDeliverer
from worker.celery_app import BACKFILL_PRIORITY, create_celery_app, publish_deliveries
from worker.delivery.limiter import LaneYieldError, delivery_lane
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine
from worker.pipeline.finish import YIELDED
from worker.pipeline.scheduler import BACKFILL_QUEUED_WHILE_LIVE, MAX_QUEUED, Queued, Scheduler


def _backfilled(user: str) -> bytes:
    return orjson.dumps({**orjson.loads(envelope(user_id=user)), "origin": ORIGIN_BACKFILL})


def _accept(engine: Engine, client: redis.Redis, *items: bytes) -> None:
    client.lpush(engine.keys.ingest_queue, *reversed(items))  # consumed from the right
    accept_batch(engine)


def _claim(engine: Engine, limit: int, live_limit: int) -> tuple[list[str], list[str]]:
    claim = engine.scripts.due_claim(limit=limit, live_limit=live_limit, claim_seconds=30)
    return claim.live, claim.backfill


def test_a_live_entity_is_claimed_before_backfill_entities_due_earlier(
    engine: Engine, client: redis.Redis
) -> None:
    _accept(engine, client, *(_backfilled(f"b{i}") for i in range(5)))
    _accept(engine, client, envelope(user_id="live"))
    due = engine.keys.due
    assert client.zscore(due, "customer:b0") < client.zscore(due, "customer:live")  # type: ignore[operator]
    assert client.zrange(engine.keys.due_live, 0, -1) == [b"customer:live"]
    live, backfill = _claim(engine, limit=2, live_limit=10)
    assert live == ["customer:live"]
    assert backfill == ["customer:b0", "customer:b1"]  # then oldest due first, as before


def test_an_entity_claimed_through_the_hint_is_rescored_in_due(
    engine: Engine, client: redis.Redis
) -> None:
    _accept(engine, client, envelope(user_id="live"))
    before = time.time()
    assert _claim(engine, limit=0, live_limit=10) == (["customer:live"], [])
    # `due` decides: claimed means due again at now + claim timeout, so a lost task comes back.
    assert client.zscore(engine.keys.due, "customer:live") >= before + 29  # type: ignore[operator]
    assert _claim(engine, limit=10, live_limit=10) == ([], [])  # not claimed twice
    # The hint is kept (the events are not delivered yet), raised to the due time.
    assert client.zscore(engine.keys.due_live, "customer:live") >= before + 29  # type: ignore[operator]


def test_stale_hints_are_dropped_and_not_yet_due_ones_wait(
    engine: Engine, client: redis.Redis
) -> None:
    keys = engine.keys
    client.zadd(keys.due_live, {"customer:gone": 0, "customer:later": 0})
    later = time.time() + 60
    client.zadd(keys.due, {"customer:later": later})
    assert _claim(engine, limit=10, live_limit=10) == ([], [])
    assert client.zscore(keys.due_live, "customer:gone") is None  # not in due: dropped
    assert client.zscore(keys.due_live, "customer:later") == pytest.approx(later, abs=0.01)
    assert client.zscore(keys.due, "customer:later") == pytest.approx(later, abs=0.01)


def test_a_hinted_entity_found_in_due_order_counts_as_live(
    engine: Engine, client: redis.Redis
) -> None:
    keys = engine.keys
    client.zadd(keys.due, {"customer:a": 1, "customer:b": 2})
    client.zadd(keys.due_live, {"customer:b": 2})
    assert _claim(engine, limit=10, live_limit=0) == (["customer:b"], ["customer:a"])


def test_delivery_unhints_a_drained_entity_and_moves_the_hint_with_a_reschedule(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    keys, entity = engine.keys, "customer:u1"
    _accept(engine, client, envelope(user_id="u1"))
    client.zadd(keys.due_live, {entity: time.time() + 100})  # as if claimed while leased
    deliverer.fail = lambda: _accept(engine, client, envelope(user_id="u1"))  # one arrives
    assert deliver_entity(engine, entity) == "delivered"
    due_at = client.zscore(keys.due, entity)
    assert due_at is not None and client.zscore(keys.due_live, entity) == due_at  # lowered
    deliverer.fail = None
    assert deliver_entity(engine, entity) == "delivered"
    assert client.zscore(keys.due, entity) is None
    assert client.zscore(keys.due_live, entity) is None


def test_a_backfilled_event_gives_no_hint(engine: Engine, client: redis.Redis) -> None:
    _accept(engine, client, _backfilled("b"))
    assert client.zcard(engine.keys.due_live) == 0


class _Published:
    def __init__(self) -> None:
        self.live: list[str] = []
        self.backfill: list[str] = []

    def __call__(self, entities: Sequence[str], backfill: bool) -> None:
        (self.backfill if backfill else self.live).extend(entities)


def test_while_live_events_wait_backfill_claims_stop_at_the_cap(
    engine: Engine, client: redis.Redis
) -> None:
    _accept(engine, client, _backfilled("b"))
    _accept(engine, client, envelope(user_id="live"))  # sets live_waiting, as in production
    assert client.exists(engine.keys.live_waiting)
    published = _Published()
    Scheduler(engine, published, lambda: Queued(0, BACKFILL_QUEUED_WHILE_LIVE)).tick()
    assert published.live == ["customer:live"] and published.backfill == []
    assert client.zscore(engine.keys.due, "customer:b") is not None  # still due, not lost


def test_a_full_backfill_queue_never_holds_a_live_entity_back(
    engine: Engine, client: redis.Redis
) -> None:
    _accept(engine, client, _backfilled("b"))
    _accept(engine, client, envelope(user_id="live"))
    published = _Published()
    # 200 backfill tasks were queued before live traffic began: the live entity still goes out.
    Scheduler(engine, published, lambda: Queued(0, MAX_QUEUED)).tick()
    assert published.live == ["customer:live"] and published.backfill == []
    published = _Published()
    Scheduler(engine, published, lambda: Queued(MAX_QUEUED, 0)).tick()  # live tasks bound live
    assert published.live == [] and client.zscore(engine.keys.due, "customer:live") is not None


def test_without_live_traffic_backfill_fills_the_queue(engine: Engine, client: redis.Redis) -> None:
    _accept(engine, client, _backfilled("b"))
    published = _Published()
    Scheduler(engine, published, lambda: Queued(0, BACKFILL_QUEUED_WHILE_LIVE)).tick()
    assert published.backfill == ["customer:b"] and published.live == []


def test_the_broker_hands_out_live_tasks_before_backfill_ones(
    settings: Settings, client: redis.Redis
) -> None:
    app = create_celery_app(settings)
    publish_deliveries(app, ["customer:old"], backfill=True)
    publish_deliveries(app, ["customer:live"])
    order = []
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(app.conf.task_default_queue)
        for _ in range(2):
            message = queue.get(timeout=5)
            order.append(message.payload[0][0])
            message.ack()
        queue.close()
    assert order == ["customer:live", "customer:old"]
    assert BACKFILL_PRIORITY > 0  # kombu's Redis transport pops priority 0 first


def _lane_throttled(engine: Engine, client: redis.Redis, seconds: float) -> None:
    """Live events wait and the backfill lane's next grant is `seconds` away."""
    now_s, now_us = client.time()
    client.set(engine.keys.live_waiting, 1, px=60_000)
    tat = (now_s + seconds) * 1_000_000 + now_us
    client.hset(engine.keys.backfill_rate_bucket, "tat", str(tat))


def _request(engine: Engine) -> None:
    with engine.gate.acquire():
        pass


def test_a_throttled_backfill_delivery_gives_its_entity_back_uncounted(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    keys, entity = engine.keys, "customer:b"
    _accept(engine, client, _backfilled("b"))
    _lane_throttled(engine, client, 5.0)
    deliverer.fail = lambda: _request(engine)
    started = time.monotonic()
    before = time.time()
    assert deliver_entity(engine, entity) == YIELDED
    assert time.monotonic() - started < 2.0  # not the 30 s wait
    assert client.exists(keys.lease(entity)) == 0  # released
    assert client.exists(keys.retry_state(entity)) == 0  # no attempt, no retry window
    assert client.llen(keys.mailbox(entity)) == 1  # events kept
    due_at = client.zscore(keys.due, entity)
    assert due_at is not None and before + 3.5 <= due_at <= before + 6  # when the lane is free
    counters = client.hgetall(keys.counters)
    assert counters[YIELDED.encode()] == b"1" and b"retries" not in counters


def test_a_backfill_delivery_that_had_a_grant_waits_instead_of_giving_back(
    engine: Engine, client: redis.Redis
) -> None:
    gate = engine.gate
    gate.lane_give_back = 0.2
    client.set(engine.keys.live_waiting, 1, px=60_000)
    with delivery_lane("backfill", give_back=True):
        gate.release(gate.acquire_grant())  # the first grant: nothing in the way
        _lane_throttled(engine, client, 0.5)
        gate.release(gate.acquire_grant())  # waited 0.5 s: the delivery has started
    with delivery_lane("backfill", give_back=True), pytest.raises(LaneYieldError):
        _lane_throttled(engine, client, 0.5)
        gate.acquire_grant()
    with delivery_lane("backfill"):  # resync's lane: never gives back
        _lane_throttled(engine, client, 0.5)
        gate.release(gate.acquire_grant())
