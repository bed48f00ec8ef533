"""POST /webhook (Segment Webhooks destination) and POST /chartmogul (ChartMogul (Actions))."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis

from cmrelay.envelope import ORIGIN_ACTIONS, ORIGIN_WEBHOOK
from ingest.auth import js_stringify
from tests.ingest.conftest import SHARED_SECRET, WRITE_KEY, ingest_settings, queued, running
from tests.ingest.samples import ACTIONS_CONTACT, ACTIONS_CUSTOMER

IDENTIFY = {
    "type": "identify",
    "userId": "u1",
    "messageId": "wh-1",
    "timestamp": "2026-01-01T00:00:00.000Z",
    "traits": {"email": "u1@example.com"},
}
GROUP = {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "wh-2"}


def _sign(data: bytes, secret: str = SHARED_SECRET) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha1).hexdigest()


def test_classic_webhook_event_with_a_good_signature_is_queued(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = orjson.dumps(IDENTIFY)
    answer = http.post("/webhook", content=body, headers={"X-Signature": _sign(body)})
    assert answer.status_code == 200
    [envelope] = queued(redis_client)
    assert (envelope.source, envelope.origin) == ("webhook", ORIGIN_WEBHOOK)
    assert envelope.event["timestamp"] == "2026-01-01T00:00:00.000Z"  # Segment's, kept


@pytest.mark.parametrize("signature", [None, "0" * 40, _sign(b"other")])
def test_webhook_with_a_bad_or_missing_signature_is_401(
    http: httpx.Client, redis_client: redis.Redis, signature: str | None
) -> None:
    headers = {"X-Signature": signature} if signature else {}
    answer = http.post("/webhook", content=orjson.dumps(IDENTIFY), headers=headers)
    assert answer.status_code == 401
    assert queued(redis_client) == []


def test_actions_webhook_batch_is_signed_on_its_first_event_and_partially_accepted(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    events = [IDENTIFY, {"type": "group", "userId": "u1"}, GROUP, {"type": "page"}]
    answer = http.post(
        "/webhook",
        content=orjson.dumps(events),
        params={"writeKey": WRITE_KEY},  # the signature covers events[0] only (test_hostile.py)
        headers={"X-Signature": _sign(js_stringify(events[0]))},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["queued"], body["ignored"]) == (2, 1)
    assert [r["index"] for r in body["rejected"]] == [1]
    assert [e.message_id for e in queued(redis_client)] == ["wh-1", "wh-2"]


def test_invalid_single_webhook_event_is_400(http: httpx.Client) -> None:
    body = orjson.dumps({"type": "group", "userId": "u1"})
    answer = http.post("/webhook", content=body, headers={"X-Signature": _sign(body)})
    assert answer.status_code == 400
    assert "groupId" in answer.json()["fields"]


@pytest.fixture(scope="module")
def unsigned_url(redis_url: str) -> Iterator[str]:
    """An ingest with no shared secret: /webhook then wants a write key."""
    with running(ingest_settings(redis_url, segment_shared_secret=None)) as url:
        yield url


def test_without_a_shared_secret_the_webhook_needs_a_write_key(
    unsigned_url: str, redis_client: redis.Redis
) -> None:
    with httpx.Client(base_url=unsigned_url) as client:
        assert client.post("/webhook", json=IDENTIFY).status_code == 401
        assert client.post("/webhook", json=IDENTIFY, params={"writeKey": "no"}).status_code == 401
        assert (
            client.post("/webhook", json=IDENTIFY, params={"writeKey": WRITE_KEY}).status_code
            == 200
        )
        assert client.post("/webhook", json=GROUP, auth=(WRITE_KEY, "")).status_code == 200
    assert len(queued(redis_client)) == 2


def test_chartmogul_actions_send_customer_is_queued_as_a_group_call(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    answer = http.post("/chartmogul", json=ACTIONS_CUSTOMER, params={"writeKey": WRITE_KEY})
    assert answer.status_code == 200
    [envelope] = queued(redis_client)
    assert (envelope.source, envelope.origin) == ("actions", ORIGIN_ACTIONS)
    assert envelope.event["type"] == "group"
    assert envelope.event["groupId"] == "g1"
    assert envelope.event["timestamp"] == "2024-01-01T10:00:00.000Z"
    assert envelope.event["traits"] == {"name": "Soft Tech"}


def test_chartmogul_actions_send_contact_is_queued_as_an_identify_call(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    payload = {**ACTIONS_CONTACT, "first_name": "Ada"}
    assert http.post("/chartmogul", json=payload, auth=(WRITE_KEY, "")).status_code == 200
    [envelope] = queued(redis_client)
    assert envelope.event["type"] == "identify"
    assert envelope.event["traits"] == {"first_name": "Ada"}  # the trait the action read
    assert (envelope.event["userId"], envelope.event["anonymousId"]) == ("u1", "a1")


def test_chartmogul_connection_test_succeeds_without_queueing(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    assert http.post("/chartmogul", json={}, params={"writeKey": WRITE_KEY}).status_code == 200
    assert queued(redis_client) == []


def test_chartmogul_without_a_valid_key_is_401_and_invalid_payload_is_400(
    http: httpx.Client,
) -> None:
    payload = {"type": "Send Customer", "user_id": "u1"}
    assert http.post("/chartmogul", json=payload).status_code == 401
    assert http.post("/chartmogul", json=payload, params={"writeKey": "x"}).status_code == 401
    answer = http.post("/chartmogul", json=payload, params={"writeKey": WRITE_KEY})
    assert answer.status_code == 400
    assert "group_id" in answer.json()["fields"]
