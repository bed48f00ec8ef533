"""The dead-letter queue API: store, list with filters, get, replay once, purge, stats."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import orjson
import pytest
import redis

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PERMANENT, STATUS_REPLAYED, new_entry
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.envelope import Envelope
from cmrelay.errors import InvalidQueryError, PermanentDeliveryError, RetryableDeliveryError
from tests.support.events import envelope
from tests.support.scripted import ScriptedDeliverer
from worker.pipeline.accept import accept_batch
from worker.pipeline.deliver import deliver_entity
from worker.pipeline.engine import Engine


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


def test_a_replay_drops_what_the_relay_held_for_the_customer(
    dlq: DeadLetterQueue, engine: Engine, client: redis.Redis
) -> None:
    client.set(engine.keys.confirmed("a"), b"{}")
    client.set(engine.keys.confirmed("b"), b"{}")
    dlq.replay([_add(dlq, "customer:a", REASON_PERMANENT)])
    assert client.exists(engine.keys.confirmed("a")) == 0  # the next delivery re-reads ChartMogul
    assert client.exists(engine.keys.confirmed("b")) == 1


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


def _raise(exc: Exception) -> None:
    raise exc


def test_a_dead_letter_keeps_every_attempt_with_its_status_and_last_response(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer
) -> None:
    engine.settings = replace(engine.settings, retry_window=0.2)
    client.lpush(engine.keys.ingest_queue, envelope(user_id="h1", message_id="h-1"))
    accept_batch(engine)
    deliverer.fail = lambda: _raise(RetryableDeliveryError("unavailable", status=503))
    assert deliver_entity(engine, "customer:h1") == "retrying"
    assert deliver_entity(engine, "customer:h1") == "retrying"
    time.sleep(0.25)  # the retry window itself is under test, not a synchronisation
    deliverer.fail = lambda: _raise(RetryableDeliveryError("down", status=502, body="bad gw"))
    assert deliver_entity(engine, "customer:h1") == "dead_lettered"
    (entry,) = DeadLetterQueue(client, engine.keys, 60).list()
    assert [a["status_code"] for a in entry.history] == [503, 503, 502]
    assert [a["error_class"] for a in entry.history] == ["RetryableDeliveryError"] * 3
    assert entry.history[0]["at"] <= entry.history[1]["at"] <= entry.history[2]["at"]
    assert (entry.status_code, entry.last_response, entry.attempts) == (502, "bad gw", 3)


def test_stats_count_by_status_code_error_class_age_and_hour(dlq: DeadLetterQueue) -> None:
    now = time.time() // 3600 * 3600 + 100  # the two fresh entries share the current hour
    for age, code in ((10, 422), (20, 422), (7200, None), (3 * 86400, 500)):
        dlq.add(
            replace(
                new_entry(entity="customer:s", reason=REASON_PERMANENT, error_class="E",
                          last_error="x", attempts=1, first_attempt_at=now,
                          envelopes=[envelope()], now=now - age),
                status_code=code,
            )
        )  # fmt: skip
    dlq.retention = 10 * 86400
    stats = dlq.stats(now=now)
    assert stats["by_status_code"] == {"422": 2, "none": 1, "500": 1}
    assert stats["by_error_class"] == {"E": 4}
    assert stats["by_age"] == {"<1h": 2, "1h-24h": 1, "1d-7d": 1, ">7d": 0}
    assert len(stats["hourly"]) == 24 and stats["hourly"][-1]["count"] == 2
    assert sum(h["count"] for h in stats["hourly"]) == 3  # the 3-day-old one is outside 24 h
    assert 3 * 86400 <= stats["oldest_age_seconds"] < 3 * 86400 + 5


def test_entries_from_an_older_or_newer_writer_still_load(dlq: DeadLetterQueue) -> None:
    entry = new_entry(
        entity="customer:o", reason=REASON_PERMANENT, error_class="E",
        last_error="x", attempts=1, first_attempt_at=1.0, envelopes=[envelope()],
    )  # fmt: skip
    data = orjson.loads(entry.to_json())
    for name in ("status_code", "last_response", "history"):
        del data[name]
    data["added_later"] = 1
    dlq.client.set(dlq.keys.dlq_entry(entry.id), orjson.dumps(data))
    loaded = dlq.get(entry.id)
    assert loaded is not None and loaded.history == () and loaded.status_code is None


def test_replaying_one_entry_twice_even_at_once_delivers_its_events_once(
    engine: Engine, client: redis.Redis, deliverer: ScriptedDeliverer, dlq: DeadLetterQueue
) -> None:
    client.lpush(engine.keys.ingest_queue, envelope(user_id="twice", message_id="tw-1"))
    accept_batch(engine)
    deliverer.fail = lambda: _raise(PermanentDeliveryError("bad", status=422))
    assert deliver_entity(engine, "customer:twice") == "dead_lettered"
    (entry,) = dlq.list()
    deliverer.fail = None
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: dlq.replay([entry.id]), range(4)))
    assert sorted(map(len, results)) == [0, 0, 0, 1]
    assert dlq.replay([entry.id]) == []
    assert client.llen(engine.keys.ingest_queue) == 1
    accept_batch(engine)
    assert deliver_entity(engine, "customer:twice") == "delivered"
    delivered = [e["messageId"] for _, events, _ in deliverer.calls for e in events]
    assert delivered == ["tw-1", "tw-1"]  # the failed attempt, then the one replay
    assert deliver_entity(engine, "customer:twice") == "empty"


def test_an_entry_is_found_by_a_unique_prefix_of_its_id(dlq: DeadLetterQueue) -> None:
    entry_id = _add(dlq, "customer:p", REASON_PERMANENT)
    found = dlq.get(entry_id[:8])
    assert found is not None and found.id == entry_id
    assert dlq.get(entry_id[:5]) is None  # too short to be taken as a prefix


def test_an_ambiguous_prefix_is_refused_by_name(dlq: DeadLetterQueue) -> None:
    entry_id = _add(dlq, "customer:q", REASON_PERMANENT)
    twin = entry_id[:6] + ("0" if entry_id[6] != "0" else "1") * 26  # shares 6 characters
    dlq.client.zadd(dlq.keys.dlq_index, {twin: 1.0})
    with pytest.raises(InvalidQueryError, match="ambiguous"):
        dlq.get(entry_id[:6])
    assert dlq.get(entry_id[:7]) is not None
