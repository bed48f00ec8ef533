"""Views of the relay's state for /ready, metrics and the CLI: queue depths, limits, the pause,
worker heartbeats (O(1) Redis reads each), and whether Redis accepts writes (one probe write)."""

from __future__ import annotations

import time
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


WRITE_PROBE_MS = 10_000  # the probe key outlives no check by long


def write_problem(client: redis.Redis, keys: Keys) -> str | None:
    """None when Redis accepts a write; else why not, in one line.

    A Redis at maxmemory under noeviction still answers PING and reads, so only a write tells
    whether the relay can queue, accept and deliver.
    """
    try:
        client.set(keys.write_probe, b"1", px=WRITE_PROBE_MS)
    except (redis.RedisError, OSError) as exc:
        return write_refusal(exc)
    return None


def room_problem(client: redis.Redis, keys: Keys, headroom: int) -> str | None:
    """write_problem, or why a Redis that still takes a small write is too close to maxmemory
    (under noeviction) for `headroom` more bytes; None when there is room."""
    problem = write_problem(client, keys)
    if problem is not None:
        return problem
    try:
        memory: Any = client.info("memory")
    except (redis.RedisError, OSError) as exc:
        return f"Redis did not report its memory ({type(exc).__name__})"
    limit = int(memory.get("maxmemory", 0))
    used = int(memory.get("used_memory", 0))
    if limit and memory.get("maxmemory_policy") == "noeviction" and used + headroom > limit:
        return f"Redis is within {headroom} bytes of maxmemory ({used} of {limit} used)"
    return None


def write_refusal(exc: BaseException) -> str:
    """The one-line reason for a failed probe write."""
    if isinstance(exc, redis.OutOfMemoryError):
        return "Redis refuses writes: it is at maxmemory (OutOfMemoryError)"
    return f"Redis refuses writes ({type(exc).__name__})"


def member(host: str, pid: int) -> str:
    """The heartbeat ZSET member of one worker process."""
    return f"{host}|{pid}"


def live_workers(client: redis.Redis, keys: Keys, ttl: float, now: float) -> list[str]:
    """Members ("host|pid") whose last tick is within `ttl` of `now`."""
    found: Any = client.zrangebyscore(keys.heartbeats, now - ttl, "+inf")
    return [m.decode() if isinstance(m, bytes) else str(m) for m in found]


def check_health(
    client: redis.Redis, keys: Keys, *, host: str, ttl: float, ready: bool = False
) -> str | None:
    """None when this host has a worker whose scheduler ticked within `ttl` (and, for
    readiness, delivery is not paused); otherwise the one-line reason."""
    try:
        client.ping()
        ours: Any = client.zrange(keys.heartbeats, 0, -1, withscores=True)
        paused = client.get(keys.pause) if ready else None
    except (redis.RedisError, OSError) as exc:
        return f"Redis is not reachable ({type(exc).__name__})"
    prefix = f"{host}|".encode()
    ticks = [score for name, score in ours if name.startswith(prefix)]
    if not ticks:
        return f"no worker heartbeat from host {host}"
    age = time.time() - max(ticks)
    if age > ttl:
        return f"the worker heartbeat on {host} is {age:.0f} s old"
    if paused is not None:
        reason = paused.decode("utf-8", "replace") if isinstance(paused, bytes) else str(paused)
        return f"delivery is paused: {reason}"
    return None
