"""Scaling out: several worker processes on one stream, RabbitMQ as the broker, Sentinel URLs."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from cmrelay.redis_server import PrivateRedis
from tests.ingest.conftest import WRITE_KEY, ingest_settings, running
from tests.support.recorder_relay import Relay, company_event, message_id, new_entity, start_relay
from tests.support.services import PrivateSentinel, ensure_rabbitmq


def _delivered_by_worker(relay: Relay) -> Counter[int]:
    """How many "event delivered" lines each worker process logged."""
    counts: Counter[int] = Counter()
    for index in range(len(relay.workers.procs)):
        for line in relay.workers.stderr_lines(index):
            if line.startswith("{") and orjson.loads(line).get("outcome") == "delivered":
                counts[index] += 1
    return counts


def _push_and_check_once(relay: Relay, entities: int) -> None:
    """Push one event per new entity; each is delivered exactly once, each entity created once."""
    sent = []
    for _ in range(entities):
        cid, entity = new_entity()
        raw = company_event(cid)
        relay.recorder.latency[entity] = 0.1  # long enough that one process cannot take all
        sent.append((entity, message_id(raw)))
        relay.push(raw)
    for entity, mid in sent:
        relay.wait_delivered(entity, [mid], timeout=60)
    for entity, mid in sent:
        assert relay.recorder.applied[entity] == [mid]
        assert relay.recorder.creates[entity] == 1


@pytest.fixture
def three_workers(redis_url: str, tmp_path: Path) -> Iterator[Relay]:
    yield from start_relay(redis_url, tmp_path, workers=3)


def test_three_worker_processes_share_one_stream_and_deliver_each_event_once(
    three_workers: Relay,
) -> None:
    _push_and_check_once(three_workers, 36)
    spread = _delivered_by_worker(three_workers)
    assert sum(spread.values()) >= 36
    assert len(spread) == 3, f"work was not spread over all processes: {spread}"


@pytest.fixture
def rabbit_relay(redis_url: str, tmp_path: Path) -> Iterator[Relay]:
    yield from start_relay(redis_url, tmp_path, workers=2, CELERY_BROKER_URL=ensure_rabbitmq())


def test_events_flow_end_to_end_with_rabbitmq_as_the_broker(rabbit_relay: Relay) -> None:
    assert rabbit_relay.settings.broker_url.startswith("amqp://")
    _push_and_check_once(rabbit_relay, 10)
    assert rabbit_relay.client.llen(rabbit_relay.keys.ingest_queue) == 0


@pytest.fixture
def sentinel_relay(tmp_path: Path) -> Iterator[tuple[Relay, str]]:
    """A private Redis behind a private Sentinel; the relay only knows the sentinel URL."""
    master = PrivateRedis(appendonly=True).start()
    sentinel = PrivateSentinel(master.port).start()
    url = sentinel.url()
    try:
        yield from (
            (relay, url)
            for relay in start_relay(
                master.url, tmp_path, workers=1, REDIS_URL=url, CELERY_BROKER_URL=url
            )
        )
    finally:
        sentinel.stop()
        master.cleanup()


def test_the_relay_runs_on_sentinel_urls_for_state_and_broker(
    sentinel_relay: tuple[Relay, str],
) -> None:
    relay, url = sentinel_relay
    assert relay.settings.redis_url == url and relay.settings.broker_url == url
    cid, entity = new_entity()
    mid = f"sentinel-{uuid.uuid4().hex[:8]}"
    settings = ingest_settings(url, key_prefix=relay.settings.key_prefix)
    event = {"userId": "u-s", "messageId": mid, "traits": {"company": {"id": cid}}}
    with running(settings) as ingest, httpx.Client(base_url=ingest, timeout=10) as http:
        assert http.post("/v1/identify", json=event, auth=(WRITE_KEY, "")).status_code == 200
        relay.wait_delivered(entity, [mid], timeout=30)
        text = http.get("/metrics").text
    assert "cmrelay_redis_up 1.0" in text
    assert 'cmrelay_ingest_events_queued_total{endpoint="identify"} 1.0' in text
