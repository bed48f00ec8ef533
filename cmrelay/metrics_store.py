"""How relay-wide metrics are written to Redis: counter fields, a buffer, latency buckets.

All metrics live in Redis (keys.metrics, keys.counters, keys.latency) so that any number of
ingest and worker processes on any number of hosts add to one set of numbers, and any process
can serve them (cmrelay/metrics.py reads them back).
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from cmrelay.keys import Keys

SEP = "|"
# Upper bounds (seconds) of the ingest -> ChartMogul latency buckets: the coalescing window
# (1 s by default) is the floor; retries push events into the minutes and hours.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
)  # fmt: skip
INF = "+Inf"


def counter_field(name: str, *labels: str) -> str:
    """The hash field of one labelled counter: "name|v1|v2" (label values may not hold "|")."""
    return SEP.join([name, *(label.replace(SEP, "_") for label in labels)])


def parse_field(field: str) -> tuple[str, tuple[str, ...]]:
    """Inverse of counter_field."""
    name, *labels = field.split(SEP)
    return name, tuple(labels)


def bucket_for(seconds: float) -> str:
    """The latency bucket (its upper bound as text) a delivery of this latency falls in."""
    index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
    return INF if index == len(LATENCY_BUCKETS) else repr(LATENCY_BUCKETS[index])


def record_latencies(pipe: Any, keys: Keys, latencies: Sequence[float]) -> None:
    """Queue the HINCRBYs for these delivery latencies on a Redis pipeline (or client)."""
    if not latencies:
        return
    for bucket, count in Counter(bucket_for(max(0.0, s)) for s in latencies).items():
        pipe.hincrby(keys.latency, bucket, count)
    pipe.hincrby(keys.latency, "count", len(latencies))
    pipe.hincrbyfloat(keys.latency, "sum", sum(max(0.0, s) for s in latencies))


class CounterBuffer:
    """Counts in process memory, added to Redis by `flush`: no Redis round trip per request.

    A writer takes the counts and puts them back if Redis refuses them (ingest/metrics.py).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def inc(self, name: str, labels: Iterable[str] = (), amount: int = 1) -> None:
        """Add `amount` to one labelled counter."""
        with self._lock:
            self._counts[counter_field(name, *labels)] += amount

    def take(self) -> dict[str, int]:
        """Everything counted since the last take, emptying the buffer."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def put_back(self, counts: dict[str, int]) -> None:
        """Return counts a failed flush could not write."""
        with self._lock:
            self._counts.update(counts)
