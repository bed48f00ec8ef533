"""Chunked reads of the DLQ index, so that a page or a count never holds every entry at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
import redis

FIRST_CHUNK_MIN = 50  # a page of 10 still reads a few spares, since filters may drop some
CHUNK_MAX = 1000  # ids per ZREVRANGEBYSCORE/MGET: bounds memory and the time Redis is busy


class StatsRow(NamedTuple):
    """The few fields of an entry that the statistics count (see cmrelay.dlq.stats)."""

    reason: str
    status: str
    status_code: int | None
    error_class: str
    dead_lettered_at: float


def walk_index(
    client: redis.Redis,
    index: str,
    until: float | None,
    since: float | None,
    first: int,
) -> Iterator[list[str]]:
    """Entry ids newest first within [since, until], in chunks that grow from `first`.

    Each chunk starts below the last score seen (skipping the ids already seen at that score),
    so entries dead-lettered while the walk runs never shift or repeat what it yields.
    """
    high: float | str = "+inf" if until is None else until
    low: float | str = "-inf" if since is None else since
    size = min(max(first, FIRST_CHUNK_MIN), CHUNK_MAX)
    skip = 0
    while True:
        rows: Any = client.zrevrangebyscore(index, high, low, start=skip, num=size, withscores=True)
        if not rows:
            return
        yield [member.decode() for member, _ in rows]
        if len(rows) < size:
            return
        last = float(rows[-1][1])
        tied = sum(1 for _, score in rows if float(score) == last)
        skip = tied + (skip if high == last else 0)
        high = last
        size = min(size * 2, CHUNK_MAX)


def stats_rows(
    client: redis.Redis, index: str, entry_key: Any, status_key: str, default_status: str
) -> Iterator[StatsRow]:
    """Every stored entry's counted fields: one pipelined MGET+HMGET round trip per chunk."""
    for ids in walk_index(client, index, None, None, CHUNK_MAX):
        pipe = client.pipeline(transaction=False)
        pipe.mget([entry_key(i) for i in ids])
        pipe.hmget(status_key, ids)
        raws, statuses = pipe.execute()
        for raw, status in zip(raws, statuses, strict=True):
            if raw is None:  # expired between the index read and now
                continue
            data = orjson.loads(raw)
            yield StatsRow(
                data["reason"],
                status.decode() if status else default_status,
                data.get("status_code"),
                data["error_class"],
                float(data["dead_lettered_at"]),
            )
