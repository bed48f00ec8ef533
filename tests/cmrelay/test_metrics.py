"""The relay-wide collector reads what the real writers (ingest buffer, limiter, DLQ,
latency recorder, heartbeat) put in Redis, and degrades to cmrelay_redis_up 0."""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from cmrelay.dlq.entry import REASON_PARTIAL, REASON_PERMANENT, DlqEntry, new_entry
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.keys import Keys
from cmrelay.lua import Scripts
from cmrelay.metrics import render
from cmrelay.metrics_store import bucket_for, parse_field, record_latencies
from ingest.metrics import IngestMetrics
from worker.delivery.limiter import RedisRequestGate
from worker.pipeline.heartbeat import beat

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(client: redis.Redis, keys: Keys) -> Samples:
    text = render(client, keys).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def fresh_keys() -> Keys:
    return Keys(f"tm{uuid.uuid4().hex[:8]}")


def _envelope(message_id: str) -> bytes:
    return (
        b'{"v":1,"source":"wk_x","origin":"tracking-api","received_at":"2026-01-01T00:00:00Z",'
        b'"event":{"type":"group","messageId":"' + message_id.encode() + b'","groupId":"g"}}'
    )


def _entry(reason: str) -> DlqEntry:
    return new_entry(
        entity="customer:a", reason=reason, error_class="E", last_error="x", attempts=1,
        first_attempt_at=time.time(), envelopes=[_envelope(uuid.uuid4().hex)],
    )  # fmt: skip


def test_latency_buckets_are_upper_bounds() -> None:
    assert [bucket_for(s) for s in (0.0, 0.25, 0.3, 14400.0, 14401.0)] == [
        "0.25", "0.25", "0.5", "14400.0", "+Inf",
    ]  # fmt: skip
    assert parse_field("ingest_requests|batch|accepted") == (
        "ingest_requests", ("batch", "accepted"),
    )  # fmt: skip


def test_ingest_counts_reach_redis_and_the_histogram_is_cumulative(redis_url: str) -> None:
    client, keys = redis.Redis.from_url(redis_url), fresh_keys()
    metrics = IngestMetrics()
    metrics.requests.labels("batch", "accepted").inc()
    metrics.requests.labels("batch", "accepted").inc()
    metrics.ignored.labels("track").inc(3)

    async def flush() -> None:
        async_client = aioredis.Redis.from_url(redis_url)
        await metrics.flush(async_client, keys)
        await async_client.aclose()

    asyncio.run(flush())
    pipe = client.pipeline()
    record_latencies(pipe, keys, [0.1, 0.3, 5000.0, 20000.0])
    pipe.execute()
    got = samples(client, keys)
    assert (
        got[("cmrelay_ingest_requests_total", (("endpoint", "batch"), ("outcome", "accepted")))]
        == 2
    )
    assert got[("cmrelay_ingest_events_ignored_total", (("type", "track"),))] == 3
    bucket = "cmrelay_delivery_latency_seconds_bucket"
    assert got[(bucket, (("le", "0.25"),))] == 1
    assert got[(bucket, (("le", "0.5"),))] == 2
    assert got[(bucket, (("le", "3600.0"),))] == 2
    assert got[(bucket, (("le", "14400.0"),))] == 3
    assert got[(bucket, (("le", "+Inf"),))] == 4
    assert got[("cmrelay_delivery_latency_seconds_count", ())] == 4
    assert abs(got[("cmrelay_delivery_latency_seconds_sum", ())] - 25000.4) < 1e-6
    assert metrics.buffer.take() == {}  # flushed, not kept twice


def test_limiter_responses_waits_pause_dlq_and_workers_are_reported(redis_url: str) -> None:
    client, keys = redis.Redis.from_url(redis_url), fresh_keys()
    gate = RedisRequestGate(Scripts(client, keys), rate=20, max_in_flight=5, slot_ttl=5)
    for status in (200, 201, 429, None):
        gate.observe(status, None)
    client.delete(keys.blocked_until)  # not waiting out the 429 block here
    with gate.acquire(), gate.acquire():  # the second waits ~1/20 s for the rate
        pass
    dlq = DeadLetterQueue(client, keys, retention=3600)
    reasons = (REASON_PERMANENT, REASON_PERMANENT, REASON_PARTIAL)
    ids = [dlq.add(_entry(reason)) for reason in reasons]
    dlq.replay([ids[0]])
    dlq.purge([ids[2]])
    client.set(keys.pause, "HTTP 401")
    beat(client, keys, host="h1", pid=1, tick=time.time(), ttl=10)
    got = samples(client, keys)
    assert got[("cmrelay_chartmogul_responses_total", (("status", "429"),))] == 1
    assert got[("cmrelay_chartmogul_responses_total", (("status", "none"),))] == 1
    assert got[("cmrelay_rate_limit_waits_total", ())] == 1
    assert got[("cmrelay_rate_limit_wait_seconds_total", ())] > 0
    assert got[("cmrelay_rate_limit_factor", ())] == 0.5
    dead = ("cmrelay_dlq_entries", (("reason", "permanent"), ("status", "dead")))
    replayed = ("cmrelay_dlq_entries", (("reason", "permanent"), ("status", "replayed")))
    assert got[dead] == 1 and got[replayed] == 1
    # the purged entry is gone; its label set stays, at 0, as every known one does
    partial = [v for k, v in got.items()
               if k[0] == "cmrelay_dlq_entries" and ("reason", "partial") in k[1]]  # fmt: skip
    assert partial == [0, 0]
    assert client.hlen(keys.dlq_reasons) == 2  # the purged entry's reason is forgotten
    assert got[("cmrelay_delivery_paused", ())] == 1
    assert got[("cmrelay_workers_alive", ())] == 1
    assert got[("cmrelay_redis_up", ())] == 1


def test_an_unreachable_redis_yields_only_redis_up_zero_of_the_relays_metrics() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    relay = {k: v for k, v in samples(client, Keys()).items() if k[0].startswith("cmrelay_")}
    assert {k: v for k, v in relay.items() if k[0] != "cmrelay_build_info"} == {
        ("cmrelay_redis_up", ()): 0.0
    }


def test_delivery_outcomes_start_at_zero_and_left_out_values_have_their_own_metric(
    redis_url: str,
) -> None:
    client, keys = redis.Redis.from_url(redis_url), fresh_keys()
    got = samples(client, keys)
    for outcome in ("delivered", "unchanged", "dead_lettered", "skipped"):
        assert got[("cmrelay_deliveries_total", (("outcome", outcome),))] == 0  # alertable at once
    client.hset(keys.counters, mapping={"unchanged": 7, "dropped_by_chartmogul": 2,
                                        "dropped_attributes": 1, "leads_merged": 3})  # fmt: skip
    got = samples(client, keys)
    assert got[("cmrelay_deliveries_total", (("outcome", "unchanged"),))] == 7
    left = "cmrelay_attributes_left_out_total"
    assert got[(left, (("reason", "not_kept_by_chartmogul"),))] == 2
    assert got[(left, (("reason", "unfit_type"),))] == 1
    assert got[("cmrelay_leads_merged_total", ())] == 3
    assert not any(k[0] == "cmrelay_accept_events_total" and "dropped" in str(k) for k in got)


def test_build_info_and_the_serving_process_are_reported(redis_url: str) -> None:
    got = samples(redis.Redis.from_url(redis_url), fresh_keys())
    (info,) = [k for k in got if k[0] == "cmrelay_build_info"]
    assert dict(info[1])["version"] == importlib.metadata.version("chartmogul-relay")
    assert got[("process_resident_memory_bytes", ())] > 0


def test_backfill_progress_is_a_metric_from_any_host(redis_url: str) -> None:
    client, keys = redis.Redis.from_url(redis_url), fresh_keys()
    assert samples(client, keys)[("cmrelay_backfill_events_total", (("stage", "queued"),))] == 0
    client.hset(keys.backfill_counters, mapping={"read": 10, "queued": 8, "rejected": 2})
    got = samples(client, keys)
    assert got[("cmrelay_backfill_events_total", (("stage", "queued"),))] == 8
    assert got[("cmrelay_backfill_events_total", (("stage", "rejected"),))] == 2


def test_every_relay_metric_is_listed_in_docs_metrics(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    text = render(client, fresh_keys()).decode()
    client.close()
    exposed = {f.name for f in text_string_to_metric_families(text) if f.name.startswith("cmrelay")}
    documented = Path(__file__).resolve().parents[2].joinpath("docs", "metrics.md").read_text()
    listed = {re.sub(r"_total$", "", name) for name in re.findall(r"`(cmrelay_\w+)`", documented)}
    assert exposed - listed == set()
