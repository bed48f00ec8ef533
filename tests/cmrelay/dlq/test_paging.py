"""DLQ pages and totals: offsets keep one order, counts read no bodies they can avoid."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis

from cmrelay.dlq.entry import REASON_EXPIRED, REASON_PERMANENT, new_entry
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter, Tally
from tests.support.events import envelope
from worker.pipeline.engine import Engine


@pytest.fixture
def dlq(engine: Engine, client: redis.Redis) -> DeadLetterQueue:
    return DeadLetterQueue(client, engine.keys, retention=86400)


def _seed(dlq: DeadLetterQueue, n: int, now: float) -> list[str]:
    """n entries through dlq.add, one a second back from now; every third permanent, for
    customer:p; ids newest first."""
    ids = []
    for i in range(n):
        permanent = i % 3 == 0
        entry = new_entry(
            entity="customer:p" if permanent else f"customer:e{i}",
            reason=REASON_PERMANENT if permanent else REASON_EXPIRED,
            error_class="PermanentDeliveryError", last_error="boom", attempts=1,
            first_attempt_at=now, envelopes=[envelope()], now=now - i,
        )  # fmt: skip
        ids.append(dlq.add(replace(entry, id=f"p{i:05d}")))
    return ids


def _keys_read(client: redis.Redis) -> int:
    stats: dict[str, int] = client.info("stats")
    return int(stats["keyspace_hits"]) + int(stats["keyspace_misses"])


def test_pages_by_offset_add_up_to_the_whole_list_in_order(dlq: DeadLetterQueue) -> None:
    ids = _seed(dlq, 130, time.time())
    pages = [dlq.list(DlqFilter(limit=50), offset=o) for o in (0, 50, 100, 150)]
    assert [[e.id for e in p] for p in pages] == [ids[:50], ids[50:100], ids[100:], []]
    flt = DlqFilter(reason=REASON_PERMANENT, limit=20)
    permanent = [i for n, i in enumerate(ids) if n % 3 == 0]
    second = dlq.list(flt, offset=20)
    assert [e.id for e in second] == permanent[20:40]
    assert all(e.reason == REASON_PERMANENT for e in second)
    by_entity = dlq.list(DlqFilter(entity="customer:p", limit=5), offset=40)
    assert [e.id for e in by_entity] == permanent[40:45]


def test_counts_match_the_list_and_split_dead_from_replayed(dlq: DeadLetterQueue) -> None:
    ids = _seed(dlq, 90, time.time())
    dlq.replay(ids[:4])  # two of them permanent (0 and 3)
    assert dlq.count() == Tally(90, 86)
    assert dlq.count().replayed == 4
    assert dlq.count(DlqFilter(reason=REASON_PERMANENT)) == Tally(30, 28)
    assert dlq.count(DlqFilter(status="replayed", limit=1)) == Tally(4, 0)
    assert dlq.count(DlqFilter(entity="customer:p")) == Tally(30, 28)
    since = time.time() - 10.5  # the newest 11 (0..10)
    assert dlq.count(DlqFilter(since=since)) == Tally(11, 7)
    assert dlq.count(DlqFilter(text="no such thing")) == Tally(0, 0)
    for flt in (DlqFilter(reason=REASON_EXPIRED), DlqFilter(status="dead", since=since)):
        assert dlq.count(flt).matching == len(dlq.list(replace(flt, limit=1000)))


def test_a_page_and_its_totals_in_one_call_agree_with_list_and_count(
    dlq: DeadLetterQueue,
) -> None:
    ids = _seed(dlq, 40, time.time())
    dlq.replay(ids[:6])
    for flt in (DlqFilter(entity="customer:p", limit=4), DlqFilter(reason=REASON_EXPIRED, limit=4),
                DlqFilter(text="boom", status="dead", limit=7), DlqFilter(limit=3)):  # fmt: skip
        for offset in (0, 5, 100):
            entries, tally = dlq.page(flt, offset)
            assert [e.id for e in entries] == [e.id for e in dlq.list(flt, offset)]
            assert tally == dlq.count(flt)
    assert dlq.page(DlqFilter(entity="customer:p", limit=4), 4)[1] == Tally(14, 12)


def test_counting_by_reason_status_or_time_reads_no_entry_bodies(dlq: DeadLetterQueue) -> None:
    now = time.time()
    _seed(dlq, 600, now)
    for flt in (DlqFilter(), DlqFilter(reason=REASON_PERMANENT, status="dead", since=now - 299.5)):
        before = _keys_read(dlq.client)
        assert dlq.count(flt).matching in (600, 100)
        # The index and the two hashes, a few reads per chunk of up to 1,000: never 600 bodies.
        assert _keys_read(dlq.client) - before <= 6


def test_entries_without_a_recorded_reason_are_still_filtered_by_reason(
    dlq: DeadLetterQueue,
) -> None:
    ids = _seed(dlq, 9, time.time())
    dlq.client.delete(dlq.keys.dlq_reasons)  # stored by an older release (or bench/dlq.py)
    permanent = [i for n, i in enumerate(ids) if n % 3 == 0]
    assert [e.id for e in dlq.list(DlqFilter(reason=REASON_PERMANENT))] == permanent
    assert dlq.count(DlqFilter(reason=REASON_PERMANENT)) == Tally(3, 3)
