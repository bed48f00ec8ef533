"""The Segment HTTP Tracking API over real HTTP, against the real Redis."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest
import redis

from cmrelay.envelope import ORIGIN_TRACKING_API, source_for_write_key
from tests.ingest.conftest import WRITE_KEY, queued

AUTH = (WRITE_KEY, "")


def test_identify_with_basic_auth_is_queued_after_redis_acknowledged(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    answer = http.post(
        "/v1/identify",
        json={"userId": "u1", "traits": {"plan": "pro"}, "messageId": "m1"},
        auth=AUTH,
    )
    assert answer.status_code == 200
    assert answer.json()["success"] is True
    [envelope] = queued(redis_client)
    assert envelope.origin == ORIGIN_TRACKING_API
    assert envelope.source == source_for_write_key(WRITE_KEY)
    assert envelope.event["type"] == "identify"
    assert envelope.event["traits"] == {"plan": "pro"}
    assert envelope.message_id == "m1"
    assert envelope.received_at.endswith("Z")


def test_group_with_write_key_in_the_body_is_queued_without_the_key(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    body = {"writeKey": WRITE_KEY, "userId": "u1", "groupId": "g1", "traits": {"name": "Initech"}}
    assert http.post("/v1/group", json=body).status_code == 200
    [envelope] = queued(redis_client)
    assert envelope.event["groupId"] == "g1"
    assert WRITE_KEY.encode() not in redis_client.lindex("cmrelay:ingest", 0)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("auth", "body_key"),
    [(None, None), (("wrong", ""), None), (None, "wrong"), (("wrong", ""), WRITE_KEY)],
)
def test_missing_or_wrong_write_key_is_401_and_nothing_is_queued(
    http: httpx.Client,
    redis_client: redis.Redis,
    auth: tuple[str, str] | None,
    body_key: str | None,
) -> None:
    body: dict[str, object] = {"userId": "u1"}
    if body_key:
        body["writeKey"] = body_key
    answer = http.post("/v1/identify", json=body, auth=auth)
    assert answer.status_code == 401
    assert "wrong" not in answer.text
    assert queued(redis_client) == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/identify", {"traits": {}}, "userId"),
        ("/v1/group", {"userId": "u1"}, "groupId"),
        ("/v1/identify", {"userId": "u1", "messageId": "x" * 101}, "messageId"),
        ("/v1/identify", {"userId": "u1", "timestamp": "last tuesday"}, "timestamp"),
    ],
)
def test_schema_errors_are_400_naming_each_field(
    http: httpx.Client, redis_client: redis.Redis, path: str, body: dict[str, object], field: str
) -> None:
    answer = http.post(path, json=body, auth=AUTH)
    assert answer.status_code == 400
    assert field in answer.json()["fields"]
    assert queued(redis_client) == []


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_bodies_that_are_not_an_event_are_400(http: httpx.Client, content: bytes) -> None:
    answer = http.post("/v1/identify", content=content, auth=AUTH)
    assert answer.status_code == 400
    assert answer.json()["success"] is False


def test_single_event_over_32_kb_is_413(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = {"userId": "u1", "traits": {"blob": "x" * 33_000}}
    answer = http.post("/v1/identify", json=body, auth=AUTH)
    assert answer.status_code == 413
    assert queued(redis_client) == []


@pytest.mark.parametrize("kind", ["track", "page", "screen", "alias"])
def test_other_call_types_are_accepted_counted_and_not_queued(
    http: httpx.Client, redis_client: redis.Redis, kind: str
) -> None:
    answer = http.post(f"/v1/{kind}", json={"userId": "u1", "event": "Signed Up"}, auth=AUTH)
    assert answer.status_code == 200
    assert answer.json()["ignored"] == 1
    assert queued(redis_client) == []
    assert f'cmrelay_ingest_events_ignored_total{{type="{kind}"}}' in http.get("/metrics").text


def test_batch_queues_valid_items_and_lists_rejected_ones_by_index(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    batch = [
        {"type": "identify", "userId": "u1", "messageId": "a"},
        {"type": "group", "userId": "u1"},  # no groupId
        {"type": "track", "userId": "u1", "event": "x"},
        "not an event",
        {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "b"},
        {"type": "identify", "userId": "u2", "traits": {"blob": "x" * 33_000}},
        {"type": "purchase", "userId": "u1"},
    ]
    answer = http.post(
        "/v1/batch",
        json={"batch": batch, "writeKey": WRITE_KEY, "context": {"ip": "10.0.0.1"}},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["success"], body["queued"], body["ignored"]) == (True, 2, 1)
    assert [item["index"] for item in body["rejected"]] == [1, 3, 5, 6]
    assert "groupId" in body["rejected"][0]["fields"]
    envelopes = queued(redis_client)
    assert [e.message_id for e in envelopes] == ["a", "b"]  # in the order sent
    assert all(e.event["context"] == {"ip": "10.0.0.1"} for e in envelopes)
    metrics = http.get("/metrics").text
    assert (
        'cmrelay_ingest_events_rejected_total{endpoint="batch",reason="invalid_payload"}' in metrics
    )
    assert 'cmrelay_ingest_requests_total{endpoint="batch",outcome="partial"}' in metrics


@pytest.mark.parametrize(
    "content",
    [b"{bad", b"[]", b'{"batch": "no"}', b'{"nobatch": []}', b'{"batch": [], "sentAt": "soon"}'],
)
def test_a_body_that_is_not_a_batch_is_400(http: httpx.Client, content: bytes) -> None:
    assert http.post("/v1/batch", content=content, auth=AUTH).status_code == 400


def test_batch_over_2500_events_is_413(http: httpx.Client, redis_client: redis.Redis) -> None:
    batch = [{"type": "track", "userId": "u"}] * 2501
    answer = http.post("/v1/batch", json={"batch": batch}, auth=AUTH)
    assert answer.status_code == 413
    assert queued(redis_client) == []


def test_batch_body_over_the_byte_limit_is_413(http: httpx.Client) -> None:
    batch = [{"type": "identify", "userId": "u", "traits": {"x": "y" * 30_000}}] * 18
    answer = http.post("/v1/batch", json={"batch": batch}, auth=AUTH)  # ~540 KB > 512,000
    assert answer.status_code == 413


def test_gzip_batch_is_accepted(http: httpx.Client, redis_client: redis.Redis) -> None:
    body = {"batch": [{"type": "identify", "userId": f"u{i}"} for i in range(50)]}
    answer = http.post(
        "/v1/batch",
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        auth=AUTH,
    )
    assert answer.status_code == 200
    assert len(queued(redis_client)) == 50


def test_gzip_bomb_is_413_and_the_server_stays_up(http: httpx.Client) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}")  # ~20 KB sent, 20 MB inflated
    answer = http.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"}, auth=AUTH)
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["message"]
    assert http.get("/health").status_code == 200


def test_broken_gzip_is_400(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/batch", content=b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"}, auth=AUTH
    )
    assert answer.status_code == 400


def test_an_encoding_other_than_gzip_is_415(http: httpx.Client) -> None:
    answer = http.post(
        "/v1/batch", content=b'{"batch": []}', headers={"Content-Encoding": "br"}, auth=AUTH
    )
    assert answer.status_code == 415


def test_a_malformed_basic_header_is_401(http: httpx.Client) -> None:
    answer = http.post("/v1/identify", json={"userId": "u"}, headers={"Authorization": "Basic %"})
    assert answer.status_code == 401
