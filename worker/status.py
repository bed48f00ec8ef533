"""A snapshot of the engine's state for /ready, metrics and the CLI (read-only, O(1) calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from cmrelay.keys import Keys


@dataclass(frozen=True)
class EngineStatus:
    """Queue depths, limits and the pause, as one consistent-enough read."""

    ingest_depth: int  # envelopes waiting to be accepted
    accepting: int  # accept batches claimed right now
    due: int  # entities with pending work (scheduled or in progress)
    overdue: int  # entities whose time has come but no worker took them yet
    in_flight: int  # ChartMogul requests under way, all workers
    blocked_for: float  # seconds everyone still waits (429/503 Retry-After)
    rate_factor: float  # share of CHARTMOGUL_RATE_LIMIT in use after 429 cuts (1.0 = full)
    paused: str | None  # why delivery is paused, or None
    dead_letters: int
    counters: dict[str, int]


def engine_status(client: redis.Redis, keys: Keys) -> EngineStatus:
    """Read the status in one pipeline."""
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.llen(keys.ingest_queue)
    pipe.zcard(keys.accepting_index)
    pipe.zcard(keys.due)
    pipe.zcard(keys.in_flight)
    pipe.get(keys.blocked_until)
    pipe.hget(keys.rate_bucket, "factor")
    pipe.get(keys.pause)
    pipe.zcard(keys.dlq_index)
    pipe.hgetall(keys.counters)
    replies: list[Any] = pipe.execute()
    (sec, us), ingest, accepting, due, in_flight, blocked, factor, paused, dlq, counters = replies
    now = sec + us / 1_000_000
    overdue: Any = client.zcount(keys.due, "-inf", now)
    return EngineStatus(
        ingest_depth=int(ingest),
        accepting=int(accepting),
        due=int(due),
        overdue=int(overdue),
        in_flight=int(in_flight),
        blocked_for=max(0.0, int(blocked) / 1_000_000 - now) if blocked else 0.0,
        rate_factor=float(factor) if factor else 1.0,
        paused=paused.decode() if paused else None,
        dead_letters=int(dlq),
        counters={k.decode(): int(v) for k, v in counters.items()},
    )
