"""The webhook deliverer against the sandbox's real Segment webhook receiver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cmrelay.settings import Secret
from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer
from worker.delivery.counting import CountingGate
from worker.delivery.webhook.client import WebhookClient
from worker.delivery.webhook.deliverer import REJECTED, WebhookDeliverer

TOKEN = "hook-token"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(webhook_token=TOKEN)) as server:
        yield server


@pytest.fixture
def receipts(sandbox: SandboxServer) -> Any:
    httpx.post(f"{sandbox.control_url}/reset", timeout=5).raise_for_status()
    return lambda: httpx.get(f"{sandbox.control_url}/state", timeout=5).json()["webhook_receipts"]


def _deliverer(url: str) -> WebhookDeliverer:
    counting = CountingGate(None)
    return WebhookDeliverer(WebhookClient(url=Secret(url), gate=counting), counting)


def _identify(user: str, second: int, **traits: Any) -> dict[str, Any]:
    when = f"2026-01-01T00:00:{second:02d}.000Z"
    return {"type": "identify", "messageId": uuid.uuid4().hex, "userId": user,
            "timestamp": when, "sentAt": when, "traits": traits}  # fmt: skip


def test_events_are_sent_in_order_and_stale_or_refused_ones_are_skipped(
    sandbox: SandboxServer, receipts: Any
) -> None:
    deliverer = _deliverer(sandbox.webhook_url(TOKEN))
    stale = _identify("u1", 1, email="old@x.test")
    fresh = _identify("u1", 5, email="new@x.test")
    only_ids = _identify("u2", 6)
    clock = {"webhook:user:u1": "2026-01-01T00:00:03.000000Z"}
    outcome = deliverer.deliver("customer:u1", [stale, fresh, only_ids], clock)
    deliverer.close()
    assert [p["payload"]["email"] for p in receipts()] == ["new@x.test"]
    statuses = {r.message_id: (r.status, r.reason) for r in outcome.results}
    assert statuses[stale["messageId"]][0] == "skipped"
    assert statuses[only_ids["messageId"]] == ("skipped", REJECTED)
    assert outcome.clock_updates == {"webhook:user:u1": "2026-01-01T00:00:05.000000Z"}
    assert outcome.calls == 1


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
    assert outcome.clock_updates == {}
