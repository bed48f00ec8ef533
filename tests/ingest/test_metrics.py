"""The ingest's request duration histogram and its refusal counters, through a real ingest server
(uvicorn, the guarded protocol) on a prefix of its own, read back from GET /metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ingest.protocol
from cmrelay.metrics import (
    INGEST_DURATION_BUCKETS,
    INGEST_ENDPOINTS,
    INGEST_OUTCOMES,
    REFUSAL_REASONS,
    STATUS_CLASSES,
)
from ingest import errors
from ingest.app import TRACKING_TYPES
from ingest.metrics import duration_bucket
from tests.ingest.conftest import WRITE_KEY, ingest_settings, running
from tests.support.raw_http import send_until_answered

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def url(redis_url: str) -> Iterator[str]:
    """An ingest of its own for each test: its counts start from nothing."""
    with running(ingest_settings(redis_url, key_prefix=f"im{uuid.uuid4().hex[:8]}")) as base:
        yield base


def scrape(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def duration(samples: Samples, suffix: str, endpoint: str, klass: str, **extra: str) -> float:
    labels = {"endpoint": endpoint, "status_class": klass, **extra}
    return samples[(f"cmrelay_ingest_request_duration_seconds_{suffix}",
                    tuple(sorted(labels.items())))]  # fmt: skip


def refused(samples: Samples, reason: str) -> float:
    return samples[("cmrelay_ingest_refused_total", (("reason", reason),))]


def test_every_label_set_is_there_at_zero_before_any_request(url: str) -> None:
    samples = scrape(url)
    for endpoint in INGEST_ENDPOINTS:
        for status_class in STATUS_CLASSES:
            assert duration(samples, "count", endpoint, status_class) == 0
            assert duration(samples, "bucket", endpoint, status_class, le="+Inf") == 0
        for outcome in INGEST_OUTCOMES:
            key = (("endpoint", endpoint), ("outcome", outcome))
            assert samples[("cmrelay_ingest_requests_total", key)] == 0
    for reason in REFUSAL_REASONS:
        assert refused(samples, reason) == 0
    assert samples[("cmrelay_rate_limit_waits_total", ())] == 0
    dlq = (("reason", "permanent"), ("status", "dead"))
    assert samples[("cmrelay_dlq_entries", dlq)] == 0


def test_answered_requests_are_timed_by_endpoint_and_status_class(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for _ in range(3):
            assert http.post("/v1/identify", json={"userId": "u"}, auth=(WRITE_KEY, "")).is_success
        assert http.post("/v1/identify", json={"userId": "u"}, auth=("nope", "")).status_code == 401
        assert http.post("/v1/batch", content=b"{", auth=(WRITE_KEY, "")).status_code == 400
    samples = scrape(url)
    assert duration(samples, "count", "identify", "2xx") == 3
    assert duration(samples, "count", "identify", "4xx") == 1
    assert duration(samples, "count", "batch", "4xx") == 1
    assert duration(samples, "count", "group", "2xx") == 0
    assert 0 < duration(samples, "sum", "identify", "2xx") < 3 * 5.0
    counts = [duration(samples, "bucket", "identify", "2xx", le=str(b))
              for b in INGEST_DURATION_BUCKETS]  # fmt: skip
    assert counts == sorted(counts) and counts[-1] == 3  # cumulative; all under 5 s


def test_the_bucket_is_the_smallest_upper_bound_not_below_the_duration() -> None:
    assert duration_bucket(0.0004) == "0.001" and duration_bucket(0.001) == "0.001"
    assert duration_bucket(0.0011) == "0.0025" and duration_bucket(60.0) == "+Inf"


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest.protocol, "HEADER_TIMEOUT", 0.6)
    monkeypatch.setattr(ingest.protocol, "BODY_TIMEOUT", 0.8)


@pytest.mark.usefixtures("short_deadlines")
def test_refused_connections_are_counted_by_reason(url: str) -> None:
    head = b"POST /v1/identify HTTP/1.1\r\nHost: ingest\r\nX-Big: "
    got = send_until_answered(url, head, b"a" * 65536, max_bytes=1_000_000, seconds=10)
    assert got.status == 431
    slow_head = b"POST /v1/identify HTTP/1.1\r\nHost: ingest\r\n"
    got = send_until_answered(url, slow_head, b"X", max_bytes=10_000, seconds=8, pause=0.05)
    assert got.status == 408
    body_head = (b"POST /v1/identify HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 500\r\n\r\n")  # fmt: skip
    got = send_until_answered(url, body_head, b" ", max_bytes=10_000, seconds=8, pause=0.05)
    assert got.closed and got.status is None
    samples = scrape(url)
    assert refused(samples, "headers_too_large") == 1
    assert refused(samples, "header_timeout") == 1
    assert refused(samples, "body_timeout") == 1
    # 431 and 408 come before any handler; the slow body reached one, which saw a disconnect
    assert sum(duration(samples, "count", "identify", c) for c in STATUS_CLASSES) == 1
    disconnected = (("endpoint", "identify"), ("outcome", "disconnected"))
    assert samples[("cmrelay_ingest_requests_total", disconnected)] == 1


def test_the_known_labels_are_the_ingests_own() -> None:
    assert set(INGEST_ENDPOINTS) == {*TRACKING_TYPES, "batch", "webhook", "chartmogul"}
    codes = {c.code for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.IngestRejection)}  # fmt: skip
    assert codes <= set(INGEST_OUTCOMES)
