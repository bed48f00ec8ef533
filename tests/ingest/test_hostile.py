"""Hostile input against the real ingest over real sockets (issue 12): each case once refused
the wrong way (a 503 that Segment retries forever, a batch held back, an unsigned event let in)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis

import ingest.handlers
from cmrelay.redis_server import PrivateRedis
from ingest.auth import js_stringify
from ingest.events import MAX_DEPTH
from tests.ingest.conftest import SHARED_SECRET, WRITE_KEY, ingest_settings, queued, running

AUTH = (WRITE_KEY, "")


def nested(depth: int) -> dict[str, Any]:
    """Traits whose innermost object sits `depth` levels below the traits object itself."""
    inner: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        inner = {"a": inner}
    return inner


def signature(event: Any) -> str:
    """X-Signature as Webhooks (Actions) computes it: over the first event only."""
    return hmac.new(SHARED_SECRET.encode(), js_stringify(event), hashlib.sha1).hexdigest()


def identify(user: str, traits: Any = None) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits or {"plan": "pro"}}


# --- a signed first event does not vouch for the rest of a webhook array ----------------------
def test_a_signed_first_event_cannot_smuggle_unsigned_ones_in_an_array(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    signed = identify("victim")
    smuggled = {**identify("victim", {"email": "attacker@example.com"}), "messageId": "evil"}
    content = orjson.dumps([signed, smuggled])
    answer = http.post("/webhook", content=content, headers={"X-Signature": signature(signed)})
    assert answer.status_code == 401, answer.text
    message = answer.json()["message"]
    assert "?writeKey=" in message and "first event" in message  # says how to configure it
    assert queued(redis_client) == []


@pytest.mark.parametrize("how", ["query", "basic"])
def test_a_signed_array_with_a_write_key_is_queued(
    http: httpx.Client, redis_client: redis.Redis, how: str
) -> None:
    events = [identify("u1"), identify("u2")]
    headers = {"X-Signature": signature(events[0])}
    if how == "query":
        answer = http.post("/webhook", json=events, headers=headers, params={"writeKey": WRITE_KEY})
    else:
        answer = http.post("/webhook", json=events, headers=headers, auth=AUTH)
    assert answer.status_code == 200, answer.text
    assert [e.event["userId"] for e in queued(redis_client)] == ["u1", "u2"]


def test_a_wrong_write_key_on_a_signed_array_is_refused(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    events = [identify("u1"), identify("u2")]
    headers = {"X-Signature": signature(events[0])}
    answer = http.post("/webhook", json=events, headers=headers, params={"writeKey": "guess"})
    assert answer.status_code == 401 and queued(redis_client) == []


def test_a_signed_single_event_still_needs_no_write_key(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    event = identify("u1")
    content = orjson.dumps(event)
    answer = http.post("/webhook", content=content, headers={"X-Signature": signature(event)})
    assert answer.status_code == 200 and len(queued(redis_client)) == 1


def test_without_a_shared_secret_an_array_needs_the_write_key_too(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with running(ingest_settings(redis_url, segment_shared_secret=None)) as url:
        events = [identify("u1"), identify("u2")]
        assert httpx.post(url + "/webhook", json=events).status_code == 401
        answer = httpx.post(url + "/webhook", json=events, params={"writeKey": WRITE_KEY})
        assert answer.status_code == 200
    assert len(queued(redis_client)) == 2


# --- too deeply nested items -----------------------------------------------------------------
@pytest.mark.parametrize("depth", [MAX_DEPTH, 252, 600])
def test_a_too_deep_event_on_its_own_is_a_400_that_says_why(
    http: httpx.Client, redis_client: redis.Redis, depth: int
) -> None:
    answer = http.post("/v1/identify", json=identify("u1", nested(depth)), auth=AUTH)
    assert answer.status_code == 400, answer.text
    assert f"nested more than {MAX_DEPTH} levels" in answer.json()["message"]
    assert queued(redis_client) == []


def test_an_event_at_the_depth_limit_is_queued(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    # event (1) > traits (2) > MAX_DEPTH - 2 more objects: exactly MAX_DEPTH levels.
    answer = http.post("/v1/identify", json=identify("u1", nested(MAX_DEPTH - 3)), auth=AUTH)
    assert answer.status_code == 200, answer.text
    assert len(queued(redis_client)) == 1


@pytest.mark.parametrize("endpoint", ["/v1/batch", "/webhook"])
def test_one_too_deep_item_is_rejected_by_index_and_the_others_are_queued(
    http: httpx.Client, redis_client: redis.Redis, endpoint: str
) -> None:
    items = [identify(f"u{n}") for n in range(5)]
    items.insert(2, identify("deep", nested(252)))
    body: Any = {"batch": items} if endpoint == "/v1/batch" else items
    headers = {"X-Signature": signature(items[0])}
    answer = http.post(endpoint, json=body, auth=AUTH, headers=headers)
    assert answer.status_code == 200, answer.text
    [rejected] = answer.json()["rejected"]
    assert rejected["index"] == 2 and "nested more than" in rejected["reason"]
    users = [e.event["userId"] for e in queued(redis_client)]
    assert users == [f"u{n}" for n in range(5)]


@pytest.fixture
def prepare_fails_for_boom(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make validation hit an unexpected error (a stand-in for any bug) on userId "boom"."""
    real = ingest.handlers.prepare

    def prepare(item: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if item.get("userId") == "boom":
            raise RuntimeError("a bug in the relay")
        return real(item, *args, **kwargs)

    monkeypatch.setattr(ingest.handlers, "prepare", prepare)
    yield


@pytest.mark.usefixtures("prepare_fails_for_boom")
def test_an_unexpected_error_in_one_item_does_not_hold_back_its_batch(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    items = [identify("u0"), identify("boom"), identify("u2")]
    answer = http.post("/v1/batch", json={"batch": items}, auth=AUTH)
    assert answer.status_code == 200, answer.text
    [rejected] = answer.json()["rejected"]
    assert rejected["index"] == 1 and "could not process" in rejected["reason"]
    assert "a bug in the relay" not in answer.text  # no internals in the answer
    assert [e.event["userId"] for e in queued(redis_client)] == ["u0", "u2"]


# --- numbers beyond 64 bits: one rule, refuse the event (README, docs/reliability.md) -------
def raw_identify(user: str, number: str) -> bytes:
    """An identify whose traits.n is `number` written literally (json.dumps would not)."""
    return b'{"type":"identify","userId":"%s","traits":{"n":%s}}' % (user.encode(), number.encode())


OUT_OF_RANGE = [
    str(2**63),
    str(2**64 - 1),
    str(2**64),
    str(10**30),
    str(-(2**63) - 1),
    "1e19",
    "-9.3e18",
]
IN_RANGE = [str(2**63 - 1), str(-(2**63)), str(2**53 + 1), "1.5e18", "-0.0"]


@pytest.mark.parametrize("number", OUT_OF_RANGE)
def test_a_number_beyond_64_bits_is_a_400_naming_the_field(
    http: httpx.Client, redis_client: redis.Redis, number: str
) -> None:
    content = raw_identify("u1", number)
    answer = http.post("/v1/identify", content=content, auth=AUTH)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert "64-bit" in body["message"] and "traits.n" in body["fields"], body
    assert queued(redis_client) == []


@pytest.mark.parametrize("number", IN_RANGE)
def test_a_number_inside_64_bits_is_queued_exactly(
    http: httpx.Client, redis_client: redis.Redis, number: str
) -> None:
    answer = http.post("/v1/identify", content=raw_identify("u1", number), auth=AUTH)
    assert answer.status_code == 200, answer.text
    [envelope] = queued(redis_client)
    assert envelope.event["traits"]["n"] == orjson.loads(number)  # not rounded on the way


def test_a_number_beyond_64_bits_rejects_only_its_item_in_a_batch_and_a_webhook_array(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    items = [raw_identify("u0", "1"), raw_identify("big", str(2**64)), raw_identify("u2", "2")]
    batch = b'{"batch":[' + b",".join(items) + b"]}"
    answer = http.post("/v1/batch", content=batch, auth=AUTH)
    assert answer.status_code == 200, answer.text
    [rejected] = answer.json()["rejected"]
    assert rejected["index"] == 1 and "64-bit" in rejected["reason"]
    array = b"[" + b",".join(items) + b"]"
    first = orjson.loads(items[0])
    headers = {"X-Signature": signature(first)}
    answer = http.post("/webhook", content=array, auth=AUTH, headers=headers)
    assert answer.status_code == 200 and [r["index"] for r in answer.json()["rejected"]] == [1]
    assert [e.event["userId"] for e in queued(redis_client)] == ["u0", "u2", "u0", "u2"]


def test_a_number_beyond_64_bits_in_the_batch_context_refuses_the_batch(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    batch = b'{"batch":[%s],"context":{"n":%d}}' % (raw_identify("u0", "1"), 2**70)
    answer = http.post("/v1/batch", content=batch, auth=AUTH)
    assert answer.status_code == 400 and "context.n" in answer.json()["message"]
    assert queued(redis_client) == []


# --- Redis full (maxmemory, noeviction): /ready and cmrelay_redis_up say so ---------------
@pytest.fixture
def full_redis() -> Iterator[redis.Redis]:
    """A private redis-server of its own (the session's must stay usable) and a client."""
    server = PrivateRedis().start()
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()
    server.cleanup()


def fill(client: redis.Redis) -> None:
    """Set maxmemory below what Redis holds: under noeviction every write is refused."""
    client.set("ballast", b"x" * 2_000_000)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used // 2)


def test_ready_and_redis_up_follow_whether_redis_accepts_writes(
    full_redis: redis.Redis,
) -> None:
    url = full_redis.connection_pool.connection_kwargs
    settings = ingest_settings(f"redis://127.0.0.1:{url['port']}/0")
    with running(settings) as ingest, httpx.Client(base_url=ingest, timeout=10) as http:
        assert http.get("/ready").status_code == 200
        assert "cmrelay_redis_up 1.0" in http.get("/metrics").text
        fill(full_redis)
        ready = http.get("/ready")
        assert ready.status_code == 503 and "maxmemory" in ready.json()["reason"], ready.text
        assert ready.headers["retry-after"]
        metrics = http.get("/metrics").text
        assert "cmrelay_redis_up 0.0" in metrics
        assert "cmrelay_ingest_queue_length" in metrics  # still readable: only writes fail
        refused = http.post("/v1/identify", json={"userId": "u1"}, auth=AUTH)
        assert refused.status_code == 503  # what /ready now predicts
        full_redis.config_set("maxmemory", 0)
        assert http.get("/ready").status_code == 200
        assert "cmrelay_redis_up 1.0" in http.get("/metrics").text
        assert http.post("/v1/identify", json={"userId": "u1"}, auth=AUTH).status_code == 200
