"""The webhook deliverer against the sandbox's real Segment webhook receiver and real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from cmrelay.errors import RetryableDeliveryError
from cmrelay.keys import Keys
from cmrelay.settings import Secret
from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer
from tests.doubles.http_recorder import RecordingServer, Reply
from worker.delivery.counting import CountingGate
from worker.delivery.webhook.client import WebhookClient
from worker.delivery.webhook.deliverer import REJECTED, SentLog, WebhookDeliverer

TOKEN = "hook-token"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(webhook_token=TOKEN)) as server:
        yield server


@pytest.fixture
def receipts(sandbox: SandboxServer) -> Any:
    httpx.post(f"{sandbox.control_url}/reset", timeout=5).raise_for_status()
    return lambda: httpx.get(f"{sandbox.control_url}/state", timeout=5).json()["webhook_receipts"]


def _deliverer(url: str, sent: SentLog | None = None) -> WebhookDeliverer:
    counting = CountingGate(None)
    return WebhookDeliverer(WebhookClient(url=Secret(url), gate=counting), counting, sent)


def _identify(user: str, second: int, **traits: Any) -> dict[str, Any]:
    when = f"2026-01-01T00:00:{second:02d}.000Z"
    return {"type": "identify", "messageId": uuid.uuid4().hex, "userId": user,
            "timestamp": when, "sentAt": when,
            "traits": {"company": {"id": "c1"}, **traits}}  # fmt: skip


def test_every_event_is_sent_in_the_order_given_late_ones_too(
    sandbox: SandboxServer, receipts: Any
) -> None:
    deliverer = _deliverer(sandbox.webhook_url(TOKEN))
    fresh = _identify("u1", 5, email="new@x.test")
    late = _identify("u1", 1, email="old@x.test")  # older timestamp, arrived later
    refused = _identify("u1", 6, email="not-an-email")
    outcome = deliverer.deliver("customer:u1", [fresh, late, refused], {})
    deliverer.close()
    assert [p["payload"]["email"] for p in receipts()] == ["new@x.test", "old@x.test"]
    [result] = outcome.results
    assert (result.message_id, result.status) == (refused["messageId"], "skipped")
    assert result.reason == f"{REJECTED}: Send Contact: email is not a valid email"
    assert outcome.clock_updates == {}
    assert outcome.calls == 2


def test_the_probe_posts_an_empty_object_that_is_not_recorded(
    sandbox: SandboxServer, receipts: Any
) -> None:
    deliverer = _deliverer(sandbox.webhook_url(TOKEN))
    deliverer.probe()
    deliverer.close()
    assert receipts() == []


def test_a_refused_event_fails_alone(sandbox: SandboxServer, receipts: Any) -> None:
    deliverer = _deliverer(sandbox.webhook_url("wrong-token"))  # answers 404: permanent
    event = _identify("u3", 1, email="a@x.test")
    outcome = deliverer.deliver("customer:u3", [event], {})
    deliverer.close()
    [result] = outcome.results
    assert (result.message_id, result.status) == (event["messageId"], "failed")


def test_a_retry_after_a_failure_part_way_does_not_post_again(
    server: RecordingServer, redis_client: redis.Redis
) -> None:
    sent = SentLog(redis_client, Keys(f"t{uuid.uuid4().hex[:6]}"), ttl=60)
    deliverer = _deliverer(server.url + "/hook", sent)
    first, second = _identify("u4", 1, email="a@x.test"), _identify("u4", 2, email="b@x.test")
    server.replies += [Reply(200, {}), Reply(503, "busy")]
    with pytest.raises(RetryableDeliveryError):
        deliverer.deliver("customer:u4", [first, second], {})
    outcome = deliverer.deliver("customer:u4", [first, second], {})  # the pipeline's retry
    deliverer.close()
    posted = [json.loads(r.body)["message_id"] for r in server.requests]
    assert posted == [first["messageId"], second["messageId"], second["messageId"]]
    assert outcome.results == [] and outcome.calls == 1
