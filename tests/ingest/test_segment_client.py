"""The official segment-analytics-python client, pointed at the relay with host=."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import redis
from segment.analytics.client import Client

from tests.ingest.conftest import WRITE_KEY, queued


@pytest.mark.parametrize(("sync_mode", "gzip"), [(True, False), (False, True), (False, False)])
def test_every_identify_and_group_call_lands_on_the_queue(
    ingest_url: str, http: httpx.Client, redis_client: redis.Redis, sync_mode: bool, gzip: bool
) -> None:
    errors: list[Exception] = []
    client = Client(
        WRITE_KEY,
        host=ingest_url,
        sync_mode=sync_mode,
        gzip=gzip,
        max_retries=0,
        on_error=lambda exc, batch: errors.append(exc),
    )
    sent: list[str] = []
    for i in range(40):
        _, msg = client.identify(f"user-{i}", {"email": f"user{i}@example.com", "plan": "pro"})
        sent.append(msg["messageId"])
        _, msg = client.group(f"user-{i}", f"company-{i % 3}", {"name": f"Co {i % 3}"})
        sent.append(msg["messageId"])
    _, msg = client.track("user-0", "Signed Up")  # accepted and ignored, never queued
    client.flush()  # waits until the consumer has sent everything (no-op in sync mode)
    if not sync_mode:
        client.join()
    assert errors == []
    envelopes = queued(redis_client)
    assert sorted(e.message_id for e in envelopes) == sorted(sent)
    assert msg["messageId"] not in {e.message_id for e in envelopes}
    first = envelopes[0].event
    assert first["context"]["library"]["name"] == "analytics-python"
    assert dt.datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    assert 'cmrelay_ingest_events_ignored_total{type="track"}' in http.get("/metrics").text


def test_a_wrong_write_key_is_reported_to_the_client_as_an_error(
    ingest_url: str, redis_client: redis.Redis
) -> None:
    errors: list[Exception] = []
    client = Client(
        "not-the-key",
        host=ingest_url,
        max_retries=0,
        on_error=lambda exc, batch: errors.append(exc),
    )
    client.identify("u1", {"email": "u1@example.com"})
    client.flush()
    client.join()
    assert len(errors) == 1
    assert queued(redis_client) == []
