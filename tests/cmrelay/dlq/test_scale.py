"""The DLQ at scale: a page reads a few chunks of the index, not every entry."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PERMANENT, new_entry
from cmrelay.dlq.scan import CHUNK_MAX, FIRST_CHUNK_MIN
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from tests.support.events import envelope
from worker.pipeline.engine import Engine


@pytest.fixture
def dlq(engine: Engine, client: redis.Redis) -> DeadLetterQueue:
    return DeadLetterQueue(client, engine.keys, retention=86400)


def _seed(dlq: DeadLetterQueue, n: int, at: float, step: float = 1.0) -> list[str]:
    """n entries, one every `step` s back from `at` (0: all at once); ids newest first."""
    base = new_entry(
        entity="customer:x", reason=REASON_EXPIRED, error_class="E", last_error="boom",
        attempts=1, first_attempt_at=at, envelopes=[envelope()],
    )  # fmt: skip
    ids = []
    pipe = dlq.client.pipeline(transaction=False)
    for i in range(n):
        entry = replace(base, id=f"e{i:06d}", dead_lettered_at=at - i * step)
        pipe.set(dlq.keys.dlq_entry(entry.id), entry.to_json(), ex=86400)
        pipe.hset(dlq.keys.dlq_status, entry.id, "dead")
        pipe.zadd(dlq.keys.dlq_index, {entry.id: entry.dead_lettered_at})
        ids.append(entry.id)
    pipe.execute()
    return ids


def _keys_read(client: redis.Redis) -> int:
    stats: dict[str, int] = client.info("stats")
    return int(stats["keyspace_hits"]) + int(stats["keyspace_misses"])


def test_a_small_page_of_a_big_dlq_reads_only_the_first_chunk(dlq: DeadLetterQueue) -> None:
    now = time.time()
    ids = _seed(dlq, 5000, now)
    before = _keys_read(dlq.client)
    page = dlq.list(DlqFilter(limit=10))
    read = _keys_read(dlq.client) - before
    assert [e.id for e in page] == ids[:10]
    # One index read, one status read, FIRST_CHUNK_MIN entries: not 5,000 (nor 200 as before).
    assert read <= FIRST_CHUNK_MIN + 2, read


def test_a_filtered_page_stops_once_it_has_enough(dlq: DeadLetterQueue) -> None:
    now = time.time()
    _seed(dlq, 3000, now)
    wanted = replace(dlq.get("e002500") or pytest.fail("seeded"), reason=REASON_PERMANENT)
    dlq.client.set(dlq.keys.dlq_entry(wanted.id), wanted.to_json())
    before = _keys_read(dlq.client)
    page = dlq.list(DlqFilter(reason=REASON_PERMANENT, limit=1))
    read = _keys_read(dlq.client) - before
    assert [e.id for e in page] == ["e002500"]
    assert read < 3000, read  # stopped inside the chunk that held it: the last 499 not read


def test_paging_across_chunks_with_equal_times_misses_and_repeats_nothing(
    dlq: DeadLetterQueue,
) -> None:
    now = time.time()
    tied = _seed(dlq, FIRST_CHUNK_MIN * 3 + 7, now, step=0.0)
    got = [e.id for e in dlq.list(DlqFilter(limit=10_000))]
    assert sorted(got) == sorted(tied) and len(got) == len(set(got))


def test_since_and_until_bound_the_walk_across_many_chunks(dlq: DeadLetterQueue) -> None:
    now = float(int(time.time()))
    ids = _seed(dlq, CHUNK_MAX + 500, now)
    flt = DlqFilter(since=now - 1400, until=now - 100, limit=100_000)
    assert [e.id for e in dlq.list(flt)] == ids[100:1401]


def test_stats_count_every_entry_of_a_multi_chunk_dlq(dlq: DeadLetterQueue) -> None:
    now = time.time()
    _seed(dlq, CHUNK_MAX * 2 + 3, now, step=0.5)
    dlq.client.hset(dlq.keys.dlq_status, "e000001", "replayed")
    stats = dlq.stats(now=now)
    assert stats["total"] == CHUNK_MAX * 2 + 3
    assert stats["by_status"] == {"dead": CHUNK_MAX * 2 + 2, "replayed": 1}
    assert stats["by_reason"] == {REASON_EXPIRED: CHUNK_MAX * 2 + 3}
    assert stats["by_age"]["<1h"] == CHUNK_MAX * 2 + 3
