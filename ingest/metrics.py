"""Ingest counters, buffered in memory and added to the relay-wide counters in Redis.

Per-process prometheus_client counters would be wrong as soon as several ingest processes (or
hosts) serve one relay: each scrape would see one process. So the ingest counts locally (no
Redis round trip per request) and a background task adds the counts to Redis every
FLUSH_INTERVAL; GET /metrics flushes first, then serves cmrelay.metrics' relay-wide view.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import redis.asyncio as aioredis
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from cmrelay.keys import Keys
from cmrelay.metrics import DURATION, DURATION_SUM, INGEST_DURATION_BUCKETS
from cmrelay.metrics_store import INF, CounterBuffer, counter_field

CONTENT_TYPE = CONTENT_TYPE_LATEST
FLUSH_INTERVAL = 1.0  # seconds: a crash loses at most this much of the counts, never events
METRICS_STATE = "ingest_metrics"  # the app's lifespan state holds its IngestMetrics under this


class _Labelled:
    """`counter.labels(a, b).inc(n)`, the prometheus_client idiom the handlers use."""

    def __init__(self, buffer: CounterBuffer, name: str) -> None:
        self._buffer, self._name = buffer, name
        self._labels: Sequence[str] = ()

    def labels(self, *values: str) -> _Labelled:
        bound = _Labelled(self._buffer, self._name)
        bound._labels = values
        return bound

    def inc(self, amount: int = 1) -> None:
        self._buffer.inc(self._name, self._labels, amount)


class IngestMetrics:
    """Requests by endpoint and outcome, and how long they took; events queued, ignored (by
    type) and rejected; connections refused before a request was read (by reason)."""

    def __init__(self) -> None:
        self.buffer = CounterBuffer()
        self.requests = _Labelled(self.buffer, "ingest_requests")
        self.queued = _Labelled(self.buffer, "ingest_queued")
        self.ignored = _Labelled(self.buffer, "ingest_ignored")
        self.rejected = _Labelled(self.buffer, "ingest_rejected")
        self.refused = _Labelled(self.buffer, "ingest_refused")
        self._fields: dict[tuple[str, int, str], tuple[str, str]] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """One answered request into the duration histogram (in memory, like the counters)."""
        bucket = duration_bucket(seconds)
        fields = self._fields.get((endpoint, status, bucket))
        if fields is None:  # built once per series: this runs on every request
            status_class = f"{status // 100}xx"
            fields = (counter_field(DURATION, endpoint, status_class, bucket),
                      counter_field(DURATION_SUM, endpoint, status_class))  # fmt: skip
            self._fields[(endpoint, status, bucket)] = fields
        self.buffer.inc(fields[0])
        self.buffer.inc(fields[1], amount=round(max(0.0, seconds) * 1e6))

    async def flush(self, client: aioredis.Redis, keys: Keys) -> None:
        """Add the buffered counts to Redis; on failure they stay buffered for the next try."""
        counts = self.buffer.take()
        if not counts:
            return
        try:
            async with client.pipeline(transaction=False) as pipe:
                for field, amount in counts.items():
                    pipe.hincrby(keys.metrics, field, amount)
                await pipe.execute()
        except BaseException:
            self.buffer.put_back(counts)
            raise


def duration_bucket(seconds: float) -> str:
    """The histogram bucket (its upper bound as text) a request of this duration falls in."""
    index = bisect.bisect_left(INGEST_DURATION_BUCKETS, seconds)
    return INF if index == len(INGEST_DURATION_BUCKETS) else repr(INGEST_DURATION_BUCKETS[index])
