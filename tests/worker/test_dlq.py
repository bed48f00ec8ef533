"""The dead-letter queue API: store, list with filters, get, replay once, purge, stats."""

from __future__ import annotations

import time

import pytest
import redis

from cmrelay.envelope import Envelope
from config.settings import Secret, Settings
from worker.dlq import (
    REASON_EXPIRED,
    REASON_PERMANENT,
    STATUS_REPLAYED,
    DeadLetterQueue,
    DlqFilter,
    mask_secrets,
    new_entry,
)
from worker.engine import Engine

from .conftest import envelope


@pytest.fixture
def dlq(engine: Engine, client: redis.Redis) -> DeadLetterQueue:
    return DeadLetterQueue(client, engine.keys, retention=3600)


def _add(dlq: DeadLetterQueue, entity: str, reason: str, error: str = "boom", **kw: float) -> str:
    entry = new_entry(
        entity=entity, reason=reason, error_class="PermanentDeliveryError", last_error=error,
        attempts=1, first_attempt_at=time.time(), envelopes=[envelope(user_id=entity[9:])], **kw,
    )  # fmt: skip
    return dlq.add(entry)


def test_entries_round_trip_and_list_newest_first(dlq: DeadLetterQueue) -> None:
    old = _add(dlq, "customer:a", REASON_PERMANENT, now=time.time() - 100)
    new = _add(dlq, "customer:b", REASON_EXPIRED)
    assert [e.id for e in dlq.list()] == [new, old]
    got = dlq.get(old)
    assert got is not None and got.entity == "customer:a" and got.status == "dead"
    assert Envelope.from_bytes(got.events[0]).event["userId"] == "a"
    assert dlq.get("nope") is None


def test_filters_by_reason_entity_time_and_text(dlq: DeadLetterQueue) -> None:
    a = _add(dlq, "customer:a", REASON_PERMANENT, error="HTTP 422 bad country", now=1000.0)
    b = _add(dlq, "customer:b", REASON_EXPIRED, now=2000.0)
    assert [e.id for e in dlq.list(DlqFilter(reason=REASON_EXPIRED))] == [b]
    assert [e.id for e in dlq.list(DlqFilter(entity="customer:a"))] == [a]
    assert [e.id for e in dlq.list(DlqFilter(since=1500))] == [b]
    assert [e.id for e in dlq.list(DlqFilter(until=1500))] == [a]
    assert [e.id for e in dlq.list(DlqFilter(text="COUNTRY"))] == [a]
    assert len(dlq.list(DlqFilter(limit=1))) == 1


def test_replay_queues_flagged_envelopes_exactly_once(
    dlq: DeadLetterQueue, engine: Engine, client: redis.Redis
) -> None:
    entry_id = _add(dlq, "customer:a", REASON_PERMANENT)
    assert dlq.replay([entry_id]) == [entry_id]
    assert dlq.replay([entry_id]) == []
    queued = client.lrange(engine.keys.ingest_queue, 0, -1)
    assert len(queued) == 1 and Envelope.from_bytes(queued[0]).replay is True
    replayed = dlq.get(entry_id)
    assert replayed is not None and replayed.status == STATUS_REPLAYED
    assert [e.id for e in dlq.list(DlqFilter(status="dead"))] == []


def test_purge_by_id_and_age_and_stats(dlq: DeadLetterQueue) -> None:
    old = _add(dlq, "customer:a", REASON_PERMANENT, now=time.time() - 7200)
    keep = _add(dlq, "customer:b", REASON_EXPIRED)
    gone = _add(dlq, "customer:c", REASON_EXPIRED)
    assert dlq.purge([gone]) == 1
    stats = dlq.stats()  # stats trims past retention (3600 s) first
    assert stats["total"] == 1 and stats["by_reason"] == {REASON_EXPIRED: 1}
    assert dlq.get(old) is None and dlq.get(keep) is not None
    assert dlq.purge(older_than=0) == 1


def test_entries_expire_with_the_retention(dlq: DeadLetterQueue, client: redis.Redis) -> None:
    entry_id = _add(dlq, "customer:a", REASON_PERMANENT)
    assert 3500 < client.ttl(dlq.keys.dlq_entry(entry_id)) <= 3600


def test_secrets_are_masked_in_error_text() -> None:
    settings = Settings(chartmogul_api_key=Secret("sk_live_123"))
    text = mask_secrets("key sk_live_123 rejected; Authorization: Basic c2tfbGl2ZV8xMjM6", settings)
    assert "sk_live_123" not in text and "c2tfbGl2ZV8xMjM6" not in text
