"""DELIVERY_MODE=webhook end to end: the official client and /chartmogul -> ingest -> Redis ->
real worker processes -> the sandbox's Segment webhook receiver, over HTTP.

Webhook mode must post what Segment's ChartMogul (Actions) destination would: every event, in
arrival order, anonymous ones too, nothing held for a Group call, refusals counted.
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

from tests.ingest.conftest import WRITE_KEY
from tests.support.processes import wait_for
from tests.support.sandbox_relay import WEBHOOK_TOKEN, SandboxRelay, sandbox_relay
from worker.delivery.webhook.payloads import encode_like_segment


@pytest.fixture(scope="module")
def relay(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxRelay]:
    log_dir: Path = tmp_path_factory.mktemp("webhook-mode")
    # COMPANY_CREATION=group: API mode would hold ungrouped users; Segment holds nothing.
    with sandbox_relay(redis_url, log_dir, workers=1, start=False, DELIVERY_MODE="webhook",
                       COMPANY_CREATION="group") as relay:  # fmt: skip
        relay.workers.env["CHARTMOGUL_WEBHOOK_URL"] = relay.sandbox.webhook_url(WEBHOOK_TOKEN)
        relay.workers.start(1)
        yield relay


@pytest.fixture
def segment(relay: SandboxRelay) -> Client:
    return Client(WRITE_KEY, host=relay.ingest_url, sync_mode=True, max_retries=1)


def _id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _receipts(relay: SandboxRelay, message_ids: list[str], timeout: float = 30) -> list[Any]:
    """The payloads the receiver recorded for these messageIds, in the order it got them."""

    def found() -> list[Any]:
        got = [r["payload"] for r in relay.state()["webhook_receipts"]]
        mine = [p for p in got if p.get("message_id") in message_ids]
        return mine if len(mine) >= len(message_ids) else []

    try:
        return list(wait_for(found, timeout, f"receipts of {message_ids}", every=0.1))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{relay.workers.logs()[-4000:]}") from None


def _logged(relay: SandboxRelay, *needles: str) -> bool:
    return any(all(n in line for n in needles) for line in relay.workers.stderr_lines(0))


def test_a_late_event_is_sent_after_the_newer_one_it_followed(
    relay: SandboxRelay, segment: Client
) -> None:
    user, now = _id("late"), datetime.now(UTC)
    company = {"id": _id("co")}
    first, late = _id("m"), _id("m")
    segment.identify(user, {"email": "new@late.test", "company": company}, timestamp=now,
                     message_id=first)  # fmt: skip
    segment.identify(user, {"email": "old@late.test", "company": company},
                     timestamp=now - timedelta(hours=1), message_id=late)  # fmt: skip
    payloads = _receipts(relay, [first, late])
    # Arrival order, and the older one is not dropped (API mode would sort, then skip it).
    assert [p["email"] for p in payloads] == ["new@late.test", "old@late.test"]


def test_an_anonymous_identify_is_sent(relay: SandboxRelay, segment: Client) -> None:
    anonymous, message = _id("anon"), _id("m")
    segment.identify(anonymous_id=anonymous, traits={"company": {"id": _id("co")}},
                     message_id=message)  # fmt: skip
    [payload] = _receipts(relay, [message])
    assert payload["anonymous_id"] == anonymous and "user_id" not in payload


def test_an_ungrouped_user_is_not_held_under_company_creation_group(relay: SandboxRelay) -> None:
    # A Send Contact without company, as /chartmogul gets it from a mapping without one.
    user, message = _id("solo"), _id("m")
    posted = {"type": "Send Contact", "message_id": message, "user_id": user,
              "timestamp": "2024-01-01T10:00:00.000Z", "sent_at": "2024-01-01T10:00:01.000Z",
              "email": "solo@x.test"}  # fmt: skip
    answer = httpx.post(f"{relay.ingest_url}/chartmogul", json=posted,
                        params={"writeKey": WRITE_KEY}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    [payload] = _receipts(relay, [message])
    assert payload["user_id"] == user
    assert not relay.client.exists(relay.keys.waiting_for_group(user))
    assert relay.counter("waiting_for_group") == 0


def test_what_segment_refuses_is_counted_skipped_with_its_reason(
    relay: SandboxRelay, segment: Client
) -> None:
    before = relay.counter("skipped_at_delivery")
    bad_email, no_company, good = _id("m"), _id("m"), _id("m")
    user = _id("refused")
    segment.identify(user, {"email": "not-an-email", "company": {"id": "c"}}, message_id=bad_email)
    segment.identify(user, {"email": "a@b.co"}, message_id=no_company)  # company {} is refused
    segment.identify(user, {"email": "a@b.co", "company": {"id": "c"}}, message_id=good)
    _receipts(relay, [good])
    wait_for(lambda: relay.counter("skipped_at_delivery") - before == 2, 20, "two skips")
    sent = {r["payload"]["message_id"] for r in relay.state()["webhook_receipts"]}
    assert bad_email not in sent and no_company not in sent
    assert not relay.client.exists(relay.keys.waiting_for_group(user))  # refused, not held
    assert _logged(relay, bad_email, "Send Contact: email is not a valid email")
    assert _logged(relay, no_company, "company is missing the required field 'id'")
    assert not _logged(relay, "not-an-email")  # reasons name fields, never values


def test_a_send_contact_posted_to_chartmogul_leaves_with_the_same_fields(
    relay: SandboxRelay,
) -> None:
    message = _id("m")
    posted = {
        "type": "Send Contact", "message_id": message, "timestamp": 1704103200,
        "sent_at": "2024-01-01T10:01:00.000Z", "user_id": _id("rt"), "anonymous_id": "a1",
        "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
        "name": "Ada Lovelace", "title": "CTO", "phone": "+44 1", "linked_in":
        "https://linkedin.com/in/ada", "twitter": "@ada",
        "company": {"id": _id("co"), "name": "AE"},
    }  # fmt: skip
    answer = httpx.post(f"{relay.ingest_url}/chartmogul", json=posted,
                        params={"writeKey": WRITE_KEY}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    [payload] = _receipts(relay, [message])
    assert encode_like_segment(payload) == encode_like_segment(posted)
