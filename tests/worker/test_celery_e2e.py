"""End to end with real Celery worker processes, real Redis and a real HTTP recorder."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PARTIAL, REASON_PERMANENT
from tests.doubles.recording_deliverer import REJECT_TRAIT
from tests.support.processes import wait_for
from tests.support.recorder_relay import Relay, company_event, message_id, new_entity, start_relay
from worker.celery_app import create_celery_app, publish_deliveries


@pytest.fixture(scope="module")
def relay(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    yield from start_relay(redis_url, tmp_path_factory.mktemp("e2e"))


@pytest.fixture(autouse=True)
def _clean_rules(relay: Relay) -> Iterator[None]:
    yield
    relay.recorder.reset()


def test_same_message_id_twice_is_delivered_once(relay: Relay) -> None:
    cid, entity = new_entity()
    raw = company_event(cid, traits={"plan": "pro"})
    duplicates_before = relay.counter("duplicate")
    relay.push(raw, raw)
    relay.wait_delivered(entity, [message_id(raw)])
    relay.push(raw)  # Segment retrying after our 2xx
    wait_for(lambda: relay.counter("duplicate") >= duplicates_before + 2, 10, "dedupe counted")
    assert relay.recorder.applied[entity] == [message_id(raw)]


def test_a_burst_is_coalesced_into_one_delivery(relay: Relay) -> None:
    cid, entity = new_entity()
    burst = [company_event(cid, traits={"seq": i}) for i in range(20)]
    relay.push(*burst)
    relay.wait_delivered(entity, [message_id(r) for r in burst])
    calls = relay.recorder.calls_for(entity)
    assert [c.method for c in calls] == ["GET", "POST"]  # 2 calls for 20 events
    assert relay.recorder.entities[entity]["seq"] == 19


def test_an_older_event_arriving_later_never_overwrites_a_newer_value(relay: Relay) -> None:
    cid, entity = new_entity()
    newer = company_event(cid, traits={"name": "New"}, timestamp="2026-03-02T00:00:00Z")
    relay.push(newer)
    relay.wait_delivered(entity, [message_id(newer)])
    older = company_event(
        cid, traits={"name": "Old", "city": "Oslo"}, timestamp="2026-03-01T00:00:00Z"
    )
    relay.push(older)
    relay.wait_delivered(entity, [message_id(older)])
    assert relay.recorder.entities[entity] == {
        "company": {"id": cid}, "name": "New", "city": "Oslo",
    }  # fmt: skip


def test_concurrent_deliveries_of_a_new_entity_create_it_once(relay: Relay) -> None:
    cid, entity = new_entity()
    relay.recorder.latency[entity] = 0.2  # every call slow: a wide window for a race
    first = company_event(cid, traits={"n": 1})
    relay.push(first)
    # Ten deliver tasks at once, as a redelivery storm would publish them, to both workers.
    app = create_celery_app(relay.settings)
    publish_deliveries(app, [entity] * 10)
    later = company_event(cid, traits={"n": 2})
    relay.push(later)
    publish_deliveries(app, [entity] * 10)
    relay.wait_delivered(entity, [message_id(first), message_id(later)])
    assert relay.recorder.creates[entity] == 1
    assert all(c.status != 409 for c in relay.recorder.calls_for(entity))
    assert relay.dead_letters(entity) == []


def test_a_429_with_retry_after_holds_back_every_worker(relay: Relay) -> None:
    entities = [new_entity() for _ in range(6)]
    relay.recorder.fail(429, times=1, headers={"Retry-After": "2"})
    events = [company_event(cid) for cid, _ in entities]
    relay.push(*events)
    for (_, entity), raw in zip(entities, events, strict=True):
        relay.wait_delivered(entity, [message_id(raw)])
    calls = list(relay.recorder.iter_calls())
    hit = next(c for c in calls if c.status == 429)
    # Margins: calls granted just before the 429 was seen may still land; 2 s is Retry-After.
    quiet = [c for c in calls if hit.at + 0.3 < c.at < hit.at + 1.8]
    assert quiet == []  # nobody called while Retry-After ran, whichever worker they were on


def test_an_outage_is_ridden_out_with_backoff_then_delivered(relay: Relay) -> None:
    cid, entity = new_entity()
    relay.recorder.fail(502, entity=entity, until=time.monotonic() + 1.0)
    raw = company_event(cid)
    relay.push(raw)
    relay.wait_delivered(entity, [message_id(raw)])
    failed = [c for c in relay.recorder.calls_for(entity) if c.status == 502]
    assert len(failed) >= 3  # backed off and tried again, several times, within the window
    assert relay.dead_letters(entity) == []


def test_an_outage_longer_than_the_retry_window_dead_letters(relay: Relay) -> None:
    cid, entity = new_entity()
    relay.recorder.fail(502, entity=entity)
    raw = company_event(cid)
    relay.push(raw)
    entry = wait_for(lambda: relay.dead_letters(entity), 20, "a dead letter")[0]
    assert entry.reason == REASON_EXPIRED and entry.message_ids == (message_id(raw),)
    assert entry.attempts >= 2 and entry.last_attempt_at - entry.first_attempt_at >= 3
    wait_for(lambda: relay.settled(entity), 5, "the mailbox drained")


def test_a_permanent_error_dead_letters_at_once_and_replay_delivers_once(relay: Relay) -> None:
    cid, entity = new_entity()
    rule = relay.recorder.fail(400, entity=entity, method="POST")
    raw = company_event(cid, traits={"plan": "pro"})
    relay.push(raw)
    entry = wait_for(lambda: relay.dead_letters(entity), 15, "a dead letter")[0]
    assert entry.reason == REASON_PERMANENT and entry.attempts == 1
    assert entry.planned_operations[0]["attributes"]["plan"] == "pro"
    rule.times = 0  # the operator fixed the cause
    assert relay.dlq.replay([entry.id, entry.id]) == [entry.id]
    assert relay.dlq.replay([entry.id]) == []
    relay.wait_delivered(entity, [message_id(raw)])
    assert relay.recorder.applied[entity] == [message_id(raw)]


def test_one_rejected_event_is_dead_lettered_alone(relay: Relay) -> None:
    cid, entity = new_entity()
    good = company_event(cid, traits={"ok": True})
    bad = company_event(cid, traits={REJECT_TRAIT: True})
    relay.push(good, bad)
    relay.wait_delivered(entity, [message_id(good)])
    (entry,) = relay.dead_letters(entity)
    assert entry.reason == REASON_PARTIAL and entry.message_ids == (message_id(bad),)


def test_a_401_pauses_everyone_and_a_probe_resumes(relay: Relay) -> None:
    (cid_a, a), (cid_b, b) = new_entity(), new_entity()
    rule = relay.recorder.fail(401)
    first = company_event(cid_a)
    relay.push(first)
    wait_for(lambda: relay.client.get(relay.keys.pause), 15, "the pause")
    second = company_event(cid_b)
    relay.push(second)
    pings = lambda: [c for c in relay.recorder.iter_calls() if c.path == "/ping"]  # noqa: E731
    seen = len(pings())
    wait_for(lambda: len(pings()) >= seen + 3, 15, "probes while paused")
    assert relay.recorder.calls_for(b) == []  # no delivery calls while paused
    assert relay.client.llen(relay.keys.mailbox(a)) == 1  # events kept
    rule.times = 0
    relay.wait_delivered(a, [message_id(first)])
    relay.wait_delivered(b, [message_id(second)])
    assert relay.client.get(relay.keys.pause) is None
