"""The backfill lane of the shared gate: BACKFILL_RATE_SHARE of the rate while live events wait,
the whole rate otherwise; the accept step and the deliver step decide the lane from origin."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis

from cmrelay.envelope import ORIGIN_BACKFILL
from cmrelay.keys import Keys
from cmrelay.lua import Scripts
from tests.support.events import envelope
from tests.support.processes import max_in_any_window
from tests.support.scripted import ScriptedDeliverer
from worker.delivery import limiter
from worker.delivery.contract import DeliveryOutcome
from worker.delivery.limiter import Lane, RedisRequestGate, delivery_lane
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine

RATE = 40.0
SHARE = 0.25


def _gate(client: redis.Redis) -> tuple[RedisRequestGate, Keys]:
    keys = Keys(f"lane{uuid.uuid4().hex[:6]}")
    gate = RedisRequestGate(Scripts(client, keys), rate=RATE, max_in_flight=50, slot_ttl=5,
                            backfill_share=SHARE)  # fmt: skip
    return gate, keys


def _grants(gate: RedisRequestGate, lane: Lane, seconds: float) -> list[float]:
    """Grant times (us) of one lane taking all it can for `seconds`."""
    out: list[float] = []
    end = time.monotonic() + seconds
    with delivery_lane(lane):
        while time.monotonic() < end:
            grant = gate.acquire_grant()
            gate.release(grant)
            out.append(float(grant.granted_at_us))
    return out


def test_while_live_events_wait_the_backfill_gets_its_share(client: redis.Redis) -> None:
    gate, keys = _gate(client)
    client.set(keys.live_waiting, 1, px=10_000)
    grants = _grants(gate, "backfill", 1.5)
    assert max_in_any_window(grants, 1_000_000) <= RATE * SHARE + 1
    assert len(grants) >= RATE * SHARE  # throttled, not stopped


def test_a_backfill_delivery_once_started_finishes_at_the_whole_rate(
    client: redis.Redis,
) -> None:
    gate, keys = _gate(client)
    client.set(keys.live_waiting, 1, px=60_000)
    grants: list[float] = []
    end = time.monotonic() + 1.0
    with delivery_lane("backfill", give_back=True):  # as the deliver step runs a backfill
        while time.monotonic() < end:
            grant = gate.acquire_grant()
            gate.release(grant)
            grants.append(float(grant.granted_at_us))
    # Its first grant came through the lane; every later one outside it, so it frees its worker
    # thread soon instead of holding it at a quarter of the rate while live work waits.
    assert max_in_any_window(grants, 1_000_000) > RATE * SHARE * 2
    # and it never passes itself off as live (a live grant would set the hold to LIVE_HOLD)
    assert client.pttl(keys.live_waiting) > 50_000


def test_with_no_live_traffic_the_backfill_gets_the_whole_rate(client: redis.Redis) -> None:
    gate, keys = _gate(client)
    grants = _grants(gate, "backfill", 1.0)
    assert len(grants) >= RATE * 0.75
    assert not client.exists(keys.live_waiting)  # backfill grants do not claim to be live


def test_live_requests_keep_the_whole_rate_and_mark_live_traffic(client: redis.Redis) -> None:
    gate, keys = _gate(client)
    grants = _grants(gate, "live", 1.0)
    assert len(grants) >= RATE * 0.75
    assert 0 < int(client.pttl(keys.live_waiting)) <= limiter.LIVE_HOLD * 1000


def test_accepting_a_live_event_marks_live_traffic_a_backfilled_one_does_not(
    engine: Engine, client: redis.Redis
) -> None:
    raw = orjson.loads(envelope(user_id="u1"))
    client.lpush(engine.keys.ingest_queue, orjson.dumps({**raw, "origin": ORIGIN_BACKFILL}))
    accept_batch(engine)
    assert not client.exists(engine.keys.live_waiting)
    client.lpush(engine.keys.ingest_queue, envelope(user_id="u2"))
    accept_batch(engine)
    assert client.exists(engine.keys.live_waiting)


class _LaneRecorder(ScriptedDeliverer):
    def __init__(self) -> None:
        super().__init__()
        self.lanes: list[str] = []

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        self.lanes.append(limiter._LANE.get())
        return super().deliver(entity, events, clock)


def test_an_entity_holding_only_backfilled_events_is_delivered_in_the_backfill_lane(
    engine: Engine, client: redis.Redis
) -> None:
    recorder = _LaneRecorder()
    engine._deliverer = recorder  # type: ignore[assignment]
    for user, origins in (("u1", [ORIGIN_BACKFILL]), ("u2", [ORIGIN_BACKFILL, "tracking-api"])):
        for origin in origins:
            raw = orjson.loads(envelope(user_id=user))
            client.lpush(engine.keys.ingest_queue, orjson.dumps({**raw, "origin": origin}))
    accept_batch(engine)
    deliver_entity(engine, "customer:u1")
    deliver_entity(engine, "customer:u2")
    assert recorder.lanes == ["backfill", "live"]  # a mixed mailbox goes as live
