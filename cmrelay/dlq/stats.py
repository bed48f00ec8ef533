"""Pure DLQ statistics: counts by reason, status, HTTP status, error class, age, and per hour."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol


class Counted(Protocol):
    """What the statistics read of an entry (a DlqEntry or a dlq_scan.StatsRow)."""

    @property
    def reason(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def error_class(self) -> str: ...
    @property
    def dead_lettered_at(self) -> float: ...


HOUR = 3600.0
# Age buckets an on-call reader can act on: fresh (an incident now), today, this week, stale.
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<1h", HOUR),
    ("1h-24h", 24 * HOUR),
    ("1d-7d", 7 * 24 * HOUR),
    (">7d", float("inf")),
)
NO_STATUS = "none"  # status-code bucket of failures that got no HTTP response (timeouts)


def age_bucket(age_seconds: float) -> str:
    """The AGE_BUCKETS label for an entry this old."""
    for label, upper in AGE_BUCKETS:
        if age_seconds < upper:
            return label
    return AGE_BUCKETS[-1][0]


def hourly_counts(entries: Sequence[Counted], now: float, hours: int = 24) -> list[dict[str, Any]]:
    """Dead letters per clock hour over the last `hours` hours, oldest hour first."""
    current = now - now % HOUR
    starts = [current - HOUR * i for i in range(hours - 1, -1, -1)]
    counts = Counter(e.dead_lettered_at - e.dead_lettered_at % HOUR for e in entries)
    return [
        {
            "hour": datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:00Z"),
            "count": counts.get(start, 0),
        }
        for start in starts
    ]


def summarize(entries: Sequence[Counted], now: float) -> dict[str, Any]:
    """Everything `cmrelay dlq stats`, the admin API and the web page show about the DLQ."""
    ages = [now - e.dead_lettered_at for e in entries]
    by_age = {label: 0 for label, _ in AGE_BUCKETS}
    by_age.update(Counter(age_bucket(age) for age in ages))
    return {
        "dead": sum(1 for e in entries if e.status == "dead"),  # still waiting for someone
        "total": len(entries),
        "by_reason": dict(Counter(e.reason for e in entries)),
        "by_status": dict(Counter(e.status for e in entries)),
        "by_status_code": dict(
            Counter(NO_STATUS if e.status_code is None else str(e.status_code) for e in entries)
        ),
        "by_error_class": dict(Counter(e.error_class for e in entries)),
        "by_age": by_age,
        "oldest_age_seconds": max(ages, default=0.0),
        "hourly": hourly_counts(entries, now),
    }
