"""Scaling out: several worker processes on one stream, RabbitMQ as the broker, Sentinel URLs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cmrelay.redis_server import PrivateRedis
from tests.ingest.conftest import WRITE_KEY, ingest_settings, running
from tests.support.sandbox_relay import (
    SandboxRelay,
    group_event,
    message_id,
    new_customer,
    sandbox_relay,
)
from tests.support.services import PrivateSentinel, ensure_rabbitmq


def _push_and_check_once(relay: SandboxRelay, customers: int) -> None:
    """One event per new customer; each is delivered exactly once, each customer created once."""
    relay.rules({"latency": 0.1})  # long enough that one process cannot take all
    sent = []
    for _ in range(customers):
        cid, entity = new_customer()
        raw = group_event(cid, {"marker": cid})
        sent.append((cid, entity, message_id(raw)))
        relay.push(raw)
    for _, entity, mid in sent:
        relay.wait_delivered(entity, [mid], timeout=60)
    outcomes = relay.outcomes()
    stored = relay.customers(*(cid for cid, _, _ in sent))
    for cid, _, mid in sent:
        assert outcomes[(mid, "delivered")] == 1
        assert relay.creates(cid) == 1
        assert stored[cid]["attributes"]["custom"]["marker"] == cid


@pytest.fixture
def three_workers(redis_url: str, tmp_path: Path) -> Iterator[SandboxRelay]:
    with sandbox_relay(redis_url, tmp_path, workers=3) as relay:
        yield relay


def test_three_worker_processes_share_one_stream_and_deliver_each_event_once(
    three_workers: SandboxRelay,
) -> None:
    _push_and_check_once(three_workers, 36)
    spread = three_workers.delivered_by_worker()
    assert sum(spread.values()) == 36
    assert len(spread) == 3, f"work was not spread over all processes: {spread}"


@pytest.fixture
def rabbit_relay(redis_url: str, tmp_path: Path) -> Iterator[SandboxRelay]:
    with sandbox_relay(redis_url, tmp_path, CELERY_BROKER_URL=ensure_rabbitmq()) as relay:
        yield relay


def test_events_flow_end_to_end_with_rabbitmq_as_the_broker(rabbit_relay: SandboxRelay) -> None:
    assert rabbit_relay.settings.broker_url.startswith("amqp://")
    _push_and_check_once(rabbit_relay, 10)
    assert rabbit_relay.client.llen(rabbit_relay.keys.ingest_queue) == 0


@pytest.fixture
def sentinel_relay(tmp_path: Path) -> Iterator[tuple[SandboxRelay, str]]:
    """A private Redis behind a private Sentinel; the relay only knows the sentinel URL."""
    master = PrivateRedis(appendonly=True).start()
    sentinel = PrivateSentinel(master.port).start()
    url = sentinel.url()
    try:
        with sandbox_relay(url, tmp_path, workers=1, CELERY_BROKER_URL=url) as relay:
            yield relay, url
    finally:
        sentinel.stop()
        master.cleanup()


def test_the_real_api_deliverer_runs_on_sentinel_urls_for_state_and_broker(
    sentinel_relay: tuple[SandboxRelay, str],
) -> None:
    relay, url = sentinel_relay
    assert relay.settings.redis_url == url and relay.settings.broker_url == url
    assert relay.settings.deliverer == "" and relay.settings.delivery_mode == "api"
    cid, entity = new_customer()
    mid = f"sentinel-{uuid.uuid4().hex[:8]}"
    settings = ingest_settings(url, key_prefix=relay.settings.key_prefix)
    event = {"userId": f"u-{cid}", "messageId": mid, "traits": {"company": {"id": cid}}}
    with running(settings) as ingest, httpx.Client(base_url=ingest, timeout=10) as http:
        assert http.post("/v1/identify", json=event, auth=(WRITE_KEY, "")).status_code == 200
        relay.wait_delivered(entity, [mid], timeout=30)
        text = http.get("/metrics").text
    assert relay.creates(cid) == 1
    assert [c["external_id"] for c in relay.contacts_of(cid)] == [f"u-{cid}"]
    assert "cmrelay_redis_up 1.0" in text
    assert 'cmrelay_ingest_events_queued_total{endpoint="identify"} 1.0' in text
