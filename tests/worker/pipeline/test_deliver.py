"""Deliver, in process: lease, drain, clock, retry schedule, dead letters, pause."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PERMANENT
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.errors import (
    DeliveryConfigurationError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from tests.support.events import envelope
from tests.support.scripted import ScriptedDeliverer
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine
from worker.pipeline.scheduler import DUE_BATCH, probe_if_paused

E = "customer:u1"


def claim_due(engine: Engine) -> list[str]:
    """What the scheduler would claim now, live entities first."""
    claim = engine.scripts.due_claim(
        limit=DUE_BATCH, live_limit=DUE_BATCH, claim_seconds=engine.claim_timeout
    )
    return [*claim.live, *claim.backfill]


def _accept(engine: Engine, client: redis.Redis, *items: bytes) -> None:
    client.lpush(engine.keys.ingest_queue, *items)
    accept_batch(engine)


def _raise(exc: Exception) -> None:
    raise exc


def test_success_drains_commits_the_clock_and_unschedules(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope(traits={"name": "A"}, timestamp="2026-01-01T00:00:01Z"))
    assert deliver_entity(engine, E) == "delivered"
    assert client.llen(engine.keys.mailbox(E)) == 0
    assert client.zscore(engine.keys.due, E) is None
    assert (
        client.hget(engine.keys.attr_clock(E), "trait:name") == b"2026-01-01T00:00:01.000000+00:00"
    )
    assert client.exists(engine.keys.lease(E)) == 0
    assert deliver_entity(engine, E) == "empty"
    assert len(deliverer.calls) == 1


def test_events_are_handed_over_sorted_by_timestamp(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    late = envelope(traits={"name": "new"}, timestamp="2026-01-02T00:00:00Z")
    early = envelope(traits={"name": "old"}, timestamp="2026-01-01T00:00:00Z")
    _accept(engine, client, late, early)
    deliver_entity(engine, E)
    assert [e["traits"]["name"] for e in deliverer.calls[0][1]] == ["old", "new"]


def test_an_old_event_arriving_after_a_newer_one_changes_no_clock(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope(traits={"name": "new"}, timestamp="2026-01-02T00:00:00Z"))
    deliver_entity(engine, E)
    _accept(engine, client, envelope(traits={"name": "old"}, timestamp="2026-01-01T00:00:00Z"))
    deliver_entity(engine, E)
    assert deliverer.calls[1][2] == {"trait:name": "2026-01-02T00:00:00.000000+00:00"}
    assert (
        client.hget(engine.keys.attr_clock(E), "trait:name") == b"2026-01-02T00:00:00.000000+00:00"
    )


def test_events_arriving_during_delivery_stay_and_are_due_again(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope(traits={"n": 1}))
    extra = envelope(traits={"n": 2})
    deliverer.fail = lambda: _accept(engine, client, extra)  # arrives mid-delivery, no error
    deliver_entity(engine, E)
    assert client.lrange(engine.keys.mailbox(E), 0, -1) == [extra]
    assert client.zscore(engine.keys.due, E) is not None


def test_a_held_lease_makes_a_second_delivery_a_no_op(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope())
    client.set(engine.keys.lease(E), "someone-else", px=5000)
    assert deliver_entity(engine, E) == "busy"
    assert deliverer.calls == []
    assert client.llen(engine.keys.mailbox(E)) == 1


def test_a_lost_lease_commits_nothing(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope())
    deliverer.fail = lambda: client.set(engine.keys.lease(E), "thief")
    assert deliver_entity(engine, E) == "lease lost"
    assert client.llen(engine.keys.mailbox(E)) == 1


def test_retryable_failure_releases_the_lease_and_backs_off(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope(message_id="r1"))
    deliverer.fail = lambda: _raise(RetryableDeliveryError("503", status=503))
    before = time.time()
    assert deliver_entity(engine, E) == "retrying"
    assert client.exists(engine.keys.lease(E)) == 0  # released, not left to expire
    retry = client.hgetall(engine.keys.retry_state(E))
    assert retry[b"attempts"] == b"1" and float(retry[b"first_failure"]) >= before
    assert client.zscore(engine.keys.due, E) is not None
    deliverer.fail = None
    deadline = time.monotonic() + 5
    while not claim_due(engine) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert deliver_entity(engine, E) == "delivered"
    assert client.exists(engine.keys.retry_state(E)) == 0
    assert [e["messageId"] for e in deliverer.calls[-1][1]] == ["r1"]


def test_retry_after_is_honoured_in_the_schedule(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope())
    deliverer.fail = lambda: _raise(RetryableDeliveryError("429", status=429, retry_after=30))
    deliver_entity(engine, E)
    now = float(client.time()[0])
    assert client.zscore(engine.keys.due, E) >= now + 29


def test_retry_window_expiry_dead_letters_everything_read(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    engine.settings = replace(engine.settings, retry_window=0.2)
    _accept(engine, client, envelope(message_id="x1"), envelope(message_id="x2"))
    deliverer.fail = lambda: _raise(RetryableDeliveryError("down", status=502, body="bad gateway"))
    assert deliver_entity(engine, E) == "retrying"
    time.sleep(0.25)  # the window itself is what is under test, not a synchronisation
    assert deliver_entity(engine, E) == "dead_lettered"
    assert client.llen(engine.keys.mailbox(E)) == 0
    (entry,) = DeadLetterQueue(client, engine.keys, 60).list()
    assert entry.reason == REASON_EXPIRED and entry.attempts == 2
    assert entry.message_ids == ("x1", "x2") and "bad gateway" in entry.last_error
    assert entry.planned_operations[0]["entity"] == E


def test_permanent_failure_dead_letters_at_once(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope(message_id="p1"))
    deliverer.fail = lambda: _raise(PermanentDeliveryError("bad", status=422, body="no"))
    assert deliver_entity(engine, E) == "dead_lettered"
    (entry,) = DeadLetterQueue(client, engine.keys, 60).list()
    assert (entry.reason, entry.error_class, entry.attempts) == (
        REASON_PERMANENT, "PermanentDeliveryError", 1,
    )  # fmt: skip
    assert client.llen(engine.keys.mailbox(E)) == 0


def test_configuration_error_pauses_everyone_until_a_probe_succeeds(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    _accept(engine, client, envelope())
    deliverer.fail = lambda: _raise(DeliveryConfigurationError("401", status=401))
    assert deliver_entity(engine, E) == "paused"
    assert b"401" in client.get(engine.keys.pause)
    assert client.llen(engine.keys.mailbox(E)) == 1
    assert deliver_entity(engine, E) == "paused"  # no call while paused
    assert len(deliverer.calls) == 1
    deliverer.probe_error = DeliveryConfigurationError("still 401", status=401)
    assert probe_if_paused(engine) is False
    assert probe_if_paused(engine) is None  # another probe waits for the interval
    deliverer.probe_error, deliverer.fail = None, None
    client.delete(engine.keys.pause_probe)
    assert probe_if_paused(engine) is True
    assert deliver_entity(engine, E) == "delivered"


@pytest.mark.parametrize("visibility", [2.0])
def test_a_claimed_entity_comes_back_if_its_task_is_lost(
    engine: Engine, client: redis.Redis, visibility: float
) -> None:
    engine.settings = replace(engine.settings, visibility_timeout=visibility)
    _accept(engine, client, envelope())
    assert claim_due(engine) == [E]
    assert claim_due(engine) == []  # claimed: nobody else publishes it meanwhile
    deadline = time.monotonic() + visibility + 2
    while time.monotonic() < deadline and not (found := claim_due(engine)):
        time.sleep(0.05)
    assert found == [E]
