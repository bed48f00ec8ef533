"""DLQ benchmark: `list --limit 50`, a filtered list, a deep page, counts and `stats` at
1k/10k/100k dead letters.

    python bench/dlq.py [--sizes 1000,10000,100000] [--max-seconds 300]

Runs against a private redis-server. Each entry looks like a retry-window expiry (2 envelopes,
3 attempts in its history, ~2 KiB). "before" rows time the pre-chunking code paths (the whole
index read per page; every entry parsed into a DlqEntry for stats) on the same data.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.ingest import machine  # noqa: E402
from cmrelay.dlq.entry import REASON_EXPIRED, DlqEntry, new_entry  # noqa: E402
from cmrelay.dlq.stats import summarize  # noqa: E402
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter  # noqa: E402
from cmrelay.keys import Keys  # noqa: E402
from cmrelay.redis_server import PrivateRedis  # noqa: E402
from tests.support.events import envelope  # noqa: E402


def seed(dlq: DeadLetterQueue, start: int, stop: int, now: float) -> None:
    """Entries start..stop-1, one per second back from now, in pipelined batches."""
    attempts = [{"at": now, "error_class": "E", "status_code": 503, "error": "x" * 300}] * 3
    base = new_entry(
        entity="customer:u", reason=REASON_EXPIRED, error_class="RetryableDeliveryError",
        last_error="HTTP 503 upstream unavailable " + "y" * 200, attempts=3,
        first_attempt_at=now, envelopes=[envelope(), envelope()], history=attempts,
    )  # fmt: skip
    for lo in range(start, stop, 5000):
        pipe = dlq.client.pipeline(transaction=False)
        for i in range(lo, min(lo + 5000, stop)):
            entry = replace(base, id=f"b{i:07d}", entity=f"customer:u{i}", dead_lettered_at=now - i)
            pipe.set(dlq.keys.dlq_entry(entry.id), entry.to_json(), ex=86400 * 30)
            pipe.hset(dlq.keys.dlq_status, entry.id, "dead")
            pipe.hset(dlq.keys.dlq_reasons, entry.id, entry.reason)
            pipe.zadd(dlq.keys.dlq_index, {entry.id: entry.dead_lettered_at})
        pipe.execute()


def before_list(dlq: DeadLetterQueue, limit: int) -> list[DlqEntry]:
    """The old list(): every id of the index, then 200 entries at a time."""
    ids: Any = dlq.client.zrevrangebyscore(dlq.keys.dlq_index, "+inf", "-inf")
    out: list[DlqEntry] = []
    for lo in range(0, len(ids), 200):
        out += dlq._load([i.decode() for i in ids[lo : lo + 200]])
        if len(out) >= limit:
            return out[:limit]
    return out


def before_stats(dlq: DeadLetterQueue, now: float) -> dict[str, Any]:
    """The old stats(): every entry parsed into a DlqEntry, all held at once."""
    members: Any = dlq.client.zrange(dlq.keys.dlq_index, 0, -1)
    return summarize(dlq._load([i.decode() for i in members]), now)


def best_ms(fn: Callable[[], object], runs: int = 3) -> float:
    """Fastest of a few runs, in ms (the machine is shared)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds
    server = PrivateRedis().start()
    client = redis.Redis.from_url(server.url)
    dlq = DeadLetterQueue(client, Keys("bench"), retention=86400 * 30)
    now = time.time()
    print(f"machine: {machine()}")
    heads = ["entries", "list --limit 50", "list --entity (last entry)", "stats"]
    pages = ["page at offset 5,000", "count (all)", "count --reason --since 12h"]
    print("| " + " | ".join([*heads, "before: list", "before: stats", *pages]) + " |")
    print("|---|---|---|---|---|---|---|---|---|")
    seeded = 0
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            if time.monotonic() > deadline:
                print(f"(stopped before {size}: --max-seconds reached)")
                break
            seed(dlq, seeded, size, now)
            seeded = size
            last = DlqFilter(entity=f"customer:u{size - 1}", limit=50)
            recent = DlqFilter(reason=REASON_EXPIRED, since=now - 12 * 3600)
            cells = [
                best_ms(lambda: dlq.list(DlqFilter(limit=50))),
                best_ms(lambda f=last: dlq.list(f), runs=1),
                best_ms(lambda: dlq.stats(now=now), runs=1),
                best_ms(lambda: before_list(dlq, 50)),
                best_ms(lambda: before_stats(dlq, now), runs=1),
                best_ms(lambda: dlq.list(DlqFilter(limit=50), offset=5000)),
                best_ms(dlq.count),
                best_ms(lambda f=recent: dlq.count(f)),
            ]
            print(f"| {size:,} | " + " | ".join(f"{c:,.0f} ms" for c in cells) + " |", flush=True)
    finally:
        client.close()
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    main()
