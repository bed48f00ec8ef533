"""The relay's Prometheus metrics, read from Redis at scrape time by a custom Collector.

Relay-wide: the numbers are the same whichever process serves them (the ingest's GET /metrics
or `cmrelay metrics`). Names and labels are documented in docs/metrics.md.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.backoff import NoBackoff
from redis.retry import Retry

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PARTIAL, REASON_PERMANENT
from cmrelay.keys import Keys
from cmrelay.metrics_store import INF, LATENCY_BUCKETS, parse_field
from cmrelay.redis_conn import connect

# The ingest's label values, known here so that every label set is exposed from the start (at
# 0) by whichever process serves the scrape; tests/ingest/test_metrics.py keeps them in step
# with the ingest's routes and refusals.
INGEST_ENDPOINTS = (
    "identify", "group", "track", "page", "screen", "alias", "batch", "webhook", "chartmogul",
)  # fmt: skip
INGEST_OUTCOMES = (
    "accepted", "partial", "unauthorized", "invalid_payload", "payload_too_large",
    "unsupported_encoding", "invalid_request", "unavailable", "internal_error", "disconnected",
)  # fmt: skip
INGEST_REJECT_REASONS = ("invalid_payload", "payload_too_large", "internal_error")
IGNORED_TYPES = ("track", "page", "screen", "alias")
STATUS_CLASSES = ("2xx", "4xx", "5xx")
# Refused by ingest/protocol.py before any handler runs: 431, 408, and a body too slow (closed).
REFUSAL_REASONS = ("headers_too_large", "header_timeout", "body_timeout")
# Upper bounds (seconds) of the ingest request duration buckets: a request is one Redis write
# (about 0.4 ms alone, 10-30 ms at 64 connections: docs/benchmarks.md); a slow Redis shows up
# in the top ones.
INGEST_DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
DURATION = "ingest_duration"  # fields "ingest_duration|endpoint|class|le": per-bucket counts
DURATION_SUM = "ingest_duration_us"  # fields "ingest_duration_us|endpoint|class": sum, in us

# Fields of keys.metrics: stored name -> (exposed name, help, label names).
_COUNTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ingest_requests": (
        "cmrelay_ingest_requests", "Ingest HTTP requests by endpoint and outcome.",
        ("endpoint", "outcome"),
    ),
    "ingest_queued": (
        "cmrelay_ingest_events_queued", "Events durably queued by the ingest.", ("endpoint",),
    ),
    "ingest_ignored": (
        "cmrelay_ingest_events_ignored",
        "Events acknowledged but not queued because the relay does not use their type.",
        ("type",),
    ),
    "ingest_rejected": (
        "cmrelay_ingest_events_rejected", "Events rejected as invalid, by endpoint and reason.",
        ("endpoint", "reason"),
    ),
    "chartmogul_responses": (
        "cmrelay_chartmogul_responses",
        "Responses from ChartMogul (or its webhook) by HTTP status; \"none\": no response.",
        ("status",),
    ),
    "rate_limit_waits": (
        "cmrelay_rate_limit_waits",
        "Requests that had to wait for the shared rate limit or concurrency cap.", (),
    ),
    "rate_limit_stale_grants": (
        "cmrelay_rate_limit_stale_grants",
        "Rate-limit grants given up because they aged before the request was sent.", (),
    ),
    "ingest_refused": (
        "cmrelay_ingest_refused",
        "Connections the ingest refused before reading a request: headers_too_large (431), "
        "header_timeout (408), body_timeout (closed).",
        ("reason",),
    ),
}  # fmt: skip
# The label sets each stored counter shows at 0 before anything was counted.
_KNOWN: dict[str, tuple[tuple[str, ...], ...]] = {
    "ingest_requests": tuple((e, o) for e in INGEST_ENDPOINTS for o in INGEST_OUTCOMES),
    "ingest_queued": tuple((e,) for e in INGEST_ENDPOINTS),
    "ingest_ignored": tuple((t,) for t in IGNORED_TYPES),
    "ingest_rejected": tuple((e, r) for e in INGEST_ENDPOINTS for r in INGEST_REJECT_REASONS),
    "rate_limit_waits": ((),),
    "rate_limit_stale_grants": ((),),
    "ingest_refused": tuple((r,) for r in REFUSAL_REASONS),
}
# keys.counters fields that describe deliveries rather than the accept step.
_DELIVERY_OUTCOMES = {
    "delivered": "delivered",
    "dead_lettered": "dead_lettered",
    "skipped_at_delivery": "skipped",
    "unchanged": "unchanged",
}
BACKFILL_STAGES = ("read", "queued", "ignored", "rejected", "delivered")
# keys.counters field of backfilled events that reached an outcome at delivery (stage delivered).
_BACKFILL_DELIVERED = "backfill_delivered"
_BACKFILL_YIELDS = "backfill_yields"  # worker.pipeline.finish.YIELDED
_DLQ_REASONS = (REASON_PERMANENT, REASON_EXPIRED, REASON_PARTIAL)
# keys.counters fields that count attributes left out, by why.
_LEFT_OUT = {"dropped_attributes": "unfit_type", "dropped_by_chartmogul": "not_kept_by_chartmogul"}


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RelayCollector(Collector):
    """Collects every relay metric from Redis; a Redis failure yields only cmrelay_redis_up 0."""

    def __init__(self, client: redis.Redis, keys: Keys, heartbeat_ttl: float = 30.0) -> None:
        self.client = client
        self.keys = keys
        self.heartbeat_ttl = heartbeat_ttl

    def collect(self) -> Iterator[Metric]:
        """Prometheus calls this on every scrape."""
        from cmrelay.status import write_problem

        try:
            metrics = list(self._read())
        except (redis.RedisError, OSError):
            metrics = []
        # A full Redis (maxmemory, noeviction) still answers reads: up also needs a write.
        writable = bool(metrics) and write_problem(self.client, self.keys) is None
        up = GaugeMetricFamily(
            "cmrelay_redis_up", "1 when Redis answers reads and accepts writes (not at maxmemory)."
        )
        up.add_metric([], 1.0 if writable else 0.0)
        yield up
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        # Read-only views of the engine's keys.
        from cmrelay.status import engine_status, live_workers

        keys, client = self.keys, self.client
        status = engine_status(client, keys)
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys.metrics)
        pipe.hgetall(keys.latency)
        pipe.hgetall(keys.dlq_reasons)
        pipe.hgetall(keys.dlq_status)
        pipe.zrange(keys.dlq_index, 0, 0, withscores=True)
        pipe.hgetall(keys.backfill_counters)
        pipe.time()
        stored, latency, reasons, dlq_status, oldest, backfill, (sec, usec) = pipe.execute()
        workers = len(live_workers(client, keys, self.heartbeat_ttl, sec + usec / 1e6))
        yield from _stored_counters(stored)
        yield from _engine_counters(status.counters)
        yield from _gauges(status, workers)
        yield from _dlq(reasons, dlq_status)
        yield _dlq_age(oldest, sec + usec / 1e6)
        yield _latency(latency)
        yield _backfill({**backfill, b"delivered": status.counters.get(_BACKFILL_DELIVERED, 0)})


def _backfill(counts: Mapping[bytes, Any]) -> Metric:
    family = CounterMetricFamily(
        "cmrelay_backfill_events",
        "Events of `cmrelay backfill` runs, by stage: read from files, queued, ignored, rejected, "
        "delivered (reached an outcome at delivery).",
        labels=["stage"],
    )
    got = {_text(k): int(v) for k, v in counts.items()}
    for stage in BACKFILL_STAGES:  # every stage from the start, at 0
        family.add_metric([stage], float(got.get(stage, 0)))
    return family


def _stored_counters(stored: dict[bytes, bytes]) -> Iterator[Metric]:
    families = {
        name: CounterMetricFamily(exposed, help_text, labels=list(labels))
        for name, (exposed, help_text, labels) in _COUNTERS.items()
    }
    values: dict[str, dict[tuple[str, ...], float]] = {
        name: dict.fromkeys(_KNOWN.get(name, ()), 0.0) for name in _COUNTERS
    }
    wait_seconds = 0.0
    durations: dict[str, str] = {}
    for raw_field, raw_value in stored.items():
        text = _text(raw_field)
        name, labels = parse_field(text)
        if name == "rate_limit_wait_ms":
            wait_seconds = int(raw_value) / 1000
        elif name in (DURATION, DURATION_SUM):
            durations[text] = _text(raw_value)
        elif name in families and len(labels) == len(_COUNTERS[name][2]):
            values[name][labels] = float(int(raw_value))
    for name, family in families.items():
        for labels, value in values[name].items():
            family.add_metric(list(labels), value)
    yield from families.values()
    yield _ingest_durations(durations)
    waited = CounterMetricFamily(
        "cmrelay_rate_limit_wait_seconds", "Seconds spent waiting for the shared rate limit."
    )
    waited.add_metric([], wait_seconds)
    yield waited


def _ingest_durations(stored: dict[str, str]) -> Metric:
    family = HistogramMetricFamily(
        "cmrelay_ingest_request_duration_seconds",
        "Seconds the ingest took to answer a request, by endpoint and status class.",
        labels=["endpoint", "status_class"],
    )
    seen = {labels[:2] for labels in (parse_field(f)[1] for f in stored) if len(labels) >= 2}
    known = [(e, c) for e in INGEST_ENDPOINTS for c in STATUS_CLASSES]
    for endpoint, status_class in known + sorted(seen - set(known)):  # known ones at 0 too
        running = 0
        buckets: list[tuple[str, float]] = []
        for bound in (*(repr(b) for b in INGEST_DURATION_BUCKETS), INF):
            field = f"{DURATION}|{endpoint}|{status_class}|{bound}"
            running += int(stored.get(field, 0))
            buckets.append((bound, float(running)))
        total_us = int(stored.get(f"{DURATION_SUM}|{endpoint}|{status_class}", 0))
        family.add_metric([endpoint, status_class], buckets, sum_value=total_us / 1e6)
    return family


def _engine_counters(counters: dict[str, int]) -> Iterator[Metric]:
    accept = CounterMetricFamily(
        "cmrelay_accept_events",
        "Events taken off the ingest queue by the workers, by outcome and reason.",
        labels=["outcome", "reason"],
    )
    deliveries = CounterMetricFamily(
        "cmrelay_deliveries", "Events by delivery outcome.", labels=["outcome"]
    )
    retries = CounterMetricFamily(
        "cmrelay_delivery_retries", "Delivery attempts that failed and were re-scheduled."
    )
    calls = CounterMetricFamily(
        "cmrelay_delivery_calls", "HTTP calls made by successful deliveries."
    )
    left_out = CounterMetricFamily(
        "cmrelay_attributes_left_out",
        "Attribute values not in ChartMogul: unfit for the key's type (not sent), or sent and "
        "answered 2xx but not kept by ChartMogul.",
        labels=["reason"],
    )
    leads = CounterMetricFamily(
        "cmrelay_leads_merged", "Lead customers merged into the company their user joined."
    )
    yields = CounterMetricFamily(
        "cmrelay_backfill_yields",
        "Backfill deliveries that gave their entity back before their first call because the "
        "backfill lane was throttled for live traffic (not a failure: no attempt counted).",
    )
    yields.add_metric([], float(counters.get(_BACKFILL_YIELDS, 0)))
    retries.add_metric([], float(counters.get("retries", 0)))
    calls.add_metric([], float(counters.get("calls", 0)))
    leads.add_metric([], float(counters.get("leads_merged", 0)))
    for outcome in sorted(set(_DELIVERY_OUTCOMES.values())):  # every label from the start
        total = sum(v for f, v in counters.items() if _DELIVERY_OUTCOMES.get(f) == outcome)
        deliveries.add_metric([outcome], float(total))
    for field, reason in sorted(_LEFT_OUT.items()):
        left_out.add_metric([reason], float(counters.get(field, 0)))
    for field, value in sorted(counters.items()):
        if field not in _DELIVERY_OUTCOMES and field not in _LEFT_OUT and field not in (
            "retries", "calls", "leads_merged", _BACKFILL_DELIVERED, _BACKFILL_YIELDS,
        ):  # fmt: skip
            outcome, _, reason = field.partition(":")
            accept.add_metric([outcome, reason], float(value))
    yield from (accept, deliveries, retries, calls, left_out, leads, yields)


def _gauges(status: Any, workers: int) -> Iterator[Metric]:
    def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, help_text)
        family.add_metric([], value)
        return family

    yield gauge("cmrelay_ingest_queue_length", "Envelopes waiting on the ingest queue.",
                status.ingest_depth)  # fmt: skip
    yield gauge("cmrelay_accept_batches_claimed", "Accept batches claimed by workers right now.",
                status.accepting)  # fmt: skip
    due = GaugeMetricFamily(
        "cmrelay_due_entities",
        "Customers with pending work: ready = due now, parked = scheduled later (coalescing, "
        "retry backoff, or claimed by a running delivery).",
        labels=["state"],
    )
    due.add_metric(["ready"], status.overdue)
    due.add_metric(["parked"], status.due - status.overdue)
    yield due
    yield gauge("cmrelay_chartmogul_in_flight", "ChartMogul requests under way, all workers.",
                status.in_flight)  # fmt: skip
    yield gauge("cmrelay_rate_limit_factor",
                "Share of CHARTMOGUL_RATE_LIMIT in use after 429 cuts (1 = full rate).",
                status.rate_factor)  # fmt: skip
    yield gauge("cmrelay_rate_limit_blocked_seconds",
                "Seconds every worker still waits after a 429/503 Retry-After.",
                status.blocked_for)  # fmt: skip
    yield gauge("cmrelay_delivery_paused",
                "1 while delivery is paused (ChartMogul refused the credentials).",
                1.0 if status.paused else 0.0)  # fmt: skip
    yield gauge("cmrelay_workers_alive", "Worker processes with a fresh heartbeat.", workers)


def _dlq(reasons: dict[bytes, bytes], statuses: dict[bytes, bytes]) -> Iterator[Metric]:
    counts: Counter[tuple[str, str]] = Counter()
    for entry_id, status in statuses.items():
        counts[(_text(reasons.get(entry_id, b"unknown")), _text(status))] += 1
    entries = GaugeMetricFamily(
        "cmrelay_dlq_entries", "Dead letters stored, by reason and status.",
        labels=["reason", "status"],
    )  # fmt: skip
    for reason in _DLQ_REASONS:  # every known label set from the start, at 0
        for state in ("dead", "replayed"):
            counts.setdefault((reason, state), 0)
    for (reason, state), count in sorted(counts.items()):
        entries.add_metric([reason, state], count)
    yield entries


def _dlq_age(oldest: list[tuple[bytes, float]], now: float) -> Metric:
    age = GaugeMetricFamily(
        "cmrelay_dlq_oldest_age_seconds", "Age of the oldest stored dead letter (0: none)."
    )
    age.add_metric([], max(0.0, now - oldest[0][1]) if oldest else 0.0)
    return age


def _latency(raw: dict[bytes, bytes]) -> Metric:
    values = {_text(k): _text(v) for k, v in raw.items()}
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound in (*(repr(b) for b in LATENCY_BUCKETS), INF):
        running += int(values.get(bound, 0))
        buckets.append((bound, float(running)))
    family = HistogramMetricFamily(
        "cmrelay_delivery_latency_seconds",
        "Seconds from the ingest accepting an event to ChartMogul accepting its delivery.",
    )
    family.add_metric([], buckets, sum_value=float(values.get("sum", 0)))
    return family


def scrape_client(url: str) -> redis.Redis:
    """A client for scrapes: short timeouts and no retries, so a dead Redis answers fast."""
    return connect(url, socket_timeout=5.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0))


def render(client: redis.Redis, keys: Keys, heartbeat_ttl: float = 30.0) -> bytes:
    """The Prometheus text exposition of every relay metric."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RelayCollector(client, keys, heartbeat_ttl))
    registry.register(BuildInfo())
    # CPU, memory and open files of the process serving the scrape (an ingest replica).
    ProcessCollector(registry=registry)
    return generate_latest(registry)


class BuildInfo(Collector):
    """cmrelay_build_info{version, python} 1: which release answers, for dashboards."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "cmrelay_build_info", "The relay's version (always 1).", labels=["version", "python"]
        )
        family.add_metric([_version(), platform.python_version()], 1.0)
        yield family


def _version() -> str:
    try:
        return importlib.metadata.version("chartmogul-relay")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
