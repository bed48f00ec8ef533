"""End to end with real parts: analytics-python -> ingest (uvicorn) -> Redis -> Celery workers ->
the ChartMogul sandbox over HTTP, in both delivery modes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from segment.analytics import Client

from cmrelay.dlq.store import DlqFilter
from tests.ingest.conftest import WRITE_KEY, queued
from tests.support.processes import wait_for
from tests.support.sandbox_relay import API_KEY, WEBHOOK_TOKEN, SandboxRelay, sandbox_relay
from worker.celery_app import create_celery_app, publish_deliveries
from worker.delivery.webhook.client import HEADERS
from worker.delivery.webhook.payloads import actions_payloads, encode_like_segment


@pytest.fixture(scope="module")
def relay(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRelay]:
    with sandbox_relay(redis_url, tmp_path_factory.mktemp("e2e-sandbox")) as r:
        yield r


@pytest.fixture
def segment(relay: SandboxRelay) -> Client:
    """The official client, sending each call at once (sync_mode) to our ingest."""
    return Client(WRITE_KEY, host=relay.ingest_url, sync_mode=True, max_retries=1)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _settle(relay: SandboxRelay, check: Any, what: str, timeout: float = 30) -> Any:
    try:
        return wait_for(check, timeout, what, every=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{relay.workers.logs()[-4000:]}") from None


def test_a_mixed_stream_from_the_official_client_ends_as_exactly_the_expected_state(
    relay: SandboxRelay, segment: Client
) -> None:
    acme, ann, bob = _id("acme"), _id("ann"), _id("bob")
    now = datetime.now(UTC)
    duplicates_before = relay.counter("duplicate")
    segment.group(ann, acme, traits={
        "name": "Acme Inc", "email": "billing@acme.test", "website": "https://acme.test",
        "address": {"city": "Berlin", "country": "Germany", "postalCode": "10115"},
        "employees": 42, "paying": True, "arr_target": 1234.5, "industry": "Widgets",
        "founded": "2020-03-04T00:00:00Z",
    }, timestamp=now)  # fmt: skip
    segment.identify(ann, traits={
        "email": "ann@acme.test", "firstName": "Ann", "lastName": "Lee", "title": "CTO",
        "company": {"id": acme}, "logins": 7, "beta": False,
    }, timestamp=now + timedelta(seconds=1), message_id=f"{ann}-1")  # fmt: skip
    segment.identify(ann, traits={"email": "ann@acme.test", "title": "Ignored duplicate"},
                     timestamp=now + timedelta(seconds=1), message_id=f"{ann}-1")  # fmt: skip
    segment.identify(bob, traits={"email": "bob@acme.test", "first_name": "Bob",
                                  "last_name": "Ray", "company": {"id": acme}},
                     timestamp=now + timedelta(seconds=2))  # fmt: skip
    segment.track(ann, "Logged In", timestamp=now)
    _settle(relay, lambda: len(relay.contacts_of(acme)) == 2, "both contacts")
    relay.wait_idle()
    # An identify older than the one delivered arrives late: it must not overwrite the title.
    segment.identify(ann, traits={"email": "ann@acme.test", "title": "Intern"},
                     timestamp=now - timedelta(hours=1))  # fmt: skip
    relay.wait_idle()

    customer = relay.customers(acme)[acme]
    assert (customer["name"], customer["email"], customer["city"], customer["country"]) == (
        "Acme Inc", "billing@acme.test", "Berlin", "DE",
    )  # fmt: skip
    assert customer["zip"] == "10115" and customer["website_url"] == "https://acme.test"
    custom = customer["attributes"]["custom"]
    assert custom["employees"] == 42 and custom["paying"] is True
    assert custom["arr_target"] == 1234.5 and custom["industry"] == "Widgets"
    assert custom["founded"].startswith("2020-03-04T00:00:00")
    contacts = {c["external_id"]: c for c in relay.contacts_of(acme)}
    assert set(contacts) == {ann, bob}
    assert (contacts[ann]["first_name"], contacts[ann]["last_name"]) == ("Ann", "Lee")
    assert contacts[ann]["title"] == "CTO"
    assert contacts[ann]["custom"] == {"logins": 7, "beta": False}
    assert (contacts[bob]["first_name"], contacts[bob]["last_name"]) == ("Bob", "Ray")
    assert relay.counter("duplicate") == duplicates_before + 1
    metrics = httpx.get(f"{relay.ingest_url}/metrics", timeout=5).text
    assert 'cmrelay_ingest_events_ignored_total{type="track"} 1.0' in metrics


def test_two_workers_racing_on_one_new_customer_create_it_once(
    relay: SandboxRelay, segment: Client
) -> None:
    cid = _id("race")
    calls_before = relay.stats()["total"]
    for n in range(10):
        segment.identify(f"{cid}-u{n}", traits={"email": f"u{n}@race.test", "company": {"id": cid}})
    app = create_celery_app(relay.settings)
    publish_deliveries(app, [f"customer:{cid}"] * 20)  # every thread of both workers wants it
    _settle(relay, lambda: len(relay.contacts_of(cid)) == 10, "ten contacts")
    relay.wait_idle()
    assert list(relay.customers(cid)) == [cid]
    assert len({c["external_id"] for c in relay.contacts_of(cid)}) == 10
    # Coalesced: find + create the customer, one create per contact (a fresh customer has no
    # contacts to list); a burst split across two deliveries adds a contact listing or two.
    assert relay.stats()["total"] - calls_before <= 14


@pytest.mark.slow  # about 13 s: the sandbox lets 8 requests a second through
def test_429_and_503_slow_delivery_down_and_lose_nothing(
    relay: SandboxRelay, segment: Client
) -> None:
    ids = [_id("busy") for _ in range(12)]
    relay.faults(rate_limit=8, error_rates={"503": 0.2})
    try:
        for cid in ids:
            segment.group("someone", cid, traits={"name": cid})
        relay.wait_idle(timeout=60)
        by_status = relay.stats()["by_status"]
    finally:
        relay.faults(rate_limit=0, error_rates={})
    assert set(relay.customers(*ids)) == set(ids)
    assert by_status.get("429", 0) + by_status.get("503", 0) > 0


def test_an_outage_longer_than_the_backoff_cap_then_recovery_delivers_everything(
    relay: SandboxRelay, segment: Client
) -> None:
    ids = [_id("outage") for _ in range(3)]
    relay.faults(outage={"seconds": 2.0, "mode": "500"})  # RETRY_BACKOFF_MAX is 0.3 s
    for cid in ids:
        segment.group("someone", cid, traits={"name": cid})
    _settle(relay, lambda: relay.counter("retries") > 0, "retries during the outage")
    relay.wait_idle(timeout=30)
    assert set(relay.customers(*ids)) == set(ids)
    assert not relay.dlq.list(DlqFilter(entity=f"customer:{ids[0]}"))


def test_a_permanent_422_is_dead_lettered_and_replay_delivers_it(
    relay: SandboxRelay, segment: Client
) -> None:
    cid = _id("refused")
    relay.faults(error_rates={"422": 1.0})
    try:
        segment.group("someone", cid, traits={"name": "Refused Ltd"})
        entries = _settle(
            relay, lambda: relay.dlq.list(DlqFilter(entity=f"customer:{cid}")), "a dead letter"
        )
    finally:
        relay.faults(error_rates={})
    [entry] = entries
    assert entry.reason == "permanent" and "422" in entry.last_error
    assert entry.planned_operations[0]["op"] == "upsert_customer"
    assert not relay.customers(cid)
    assert relay.dlq.replay([entry.id]) == [entry.id]
    _settle(relay, lambda: relay.customers(cid), "the replayed customer")
    assert relay.customers(cid)[cid]["name"] == "Refused Ltd"


def test_a_401_pauses_delivery_until_the_key_works_again(
    relay: SandboxRelay, segment: Client
) -> None:
    cid = _id("paused")
    relay.restart_sandbox(api_key="a-key-the-relay-does-not-have")
    segment.group("someone", cid, traits={"name": "Paused Co"})
    _settle(relay, lambda: relay.client.get(relay.keys.pause), "delivery to pause")
    assert b"DeliveryConfiguration" in relay.client.get(relay.keys.pause)
    ready = httpx.get(f"{relay.ingest_url}/ready", timeout=5)
    assert ready.status_code == 200 and "DeliveryConfiguration" in ready.json()["paused"]
    assert "a-key-the-relay" not in ready.text and API_KEY not in ready.text  # no key leaks
    assert relay.client.llen(relay.keys.mailbox(f"customer:{cid}")) == 1  # kept, not dropped
    relay.restart_sandbox(api_key=API_KEY)
    _settle(relay, lambda: relay.customers(cid), "delivery after the key works again")
    assert not relay.client.exists(relay.keys.pause)


def test_webhook_mode_posts_segment_identical_payloads(redis_url: str, tmp_path: Path) -> None:
    with sandbox_relay(redis_url, tmp_path, workers=1, start=False,
                       DELIVERY_MODE="webhook") as relay:  # fmt: skip
        url = relay.sandbox.webhook_url(WEBHOOK_TOKEN)
        relay.workers.env["CHARTMOGUL_WEBHOOK_URL"] = url
        client = Client(WRITE_KEY, host=relay.ingest_url, sync_mode=True, max_retries=1)
        client.group("wu1", "wg1", traits={"name": "Hook Inc", "address": {"city": "Oslo"}})
        client.identify("wu1", traits={"email": "w@hook.test", "firstName": "W",
                                       "company": {"id": "wg1", "name": "Hook Inc"}})  # fmt: skip
        client.identify("wu2")  # only ids: the action refuses it, so it is skipped
        expected = [
            encode_like_segment(p) for e in queued(relay.client, relay.keys.prefix)
            if (p := actions_payloads(e.event)) is not None
        ]  # fmt: skip
        assert len(expected) == 2
        relay.workers.start(1)
        receipts = _settle(
            relay, lambda: (r := relay.state()["webhook_receipts"]) and len(r) == 2 and r,
            "two webhook receipts",
        )  # fmt: skip
        relay.wait_idle()
        assert sorted(encode_like_segment(r["payload"]) for r in receipts) == sorted(expected)
        assert {(r["content_type"], r["user_agent"]) for r in receipts} == {
            (HEADERS["content-type"], HEADERS["user-agent"])
        }
        assert relay.counter("skipped_at_delivery") == 1
