"""The shared RequestGate across real processes: rate per 1 s window, in-flight cap, 429 blocks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid

import redis

from cmrelay.keys import Keys
from cmrelay.lua import Scripts
from cmrelay.metrics_store import counter_field
from tests.support.processes import ROOT, max_in_any_window
from worker.delivery.limiter import Permit, RedisRequestGate

CLIENT = "tests.worker.delivery.limiter_client"


def _run(url: str, prefix: str, *, procs: int, rate: float, cap: int, secs: float, hold: float,
         client: redis.Redis) -> list[tuple[int, int]]:  # fmt: skip
    out = f"{prefix}:out"
    args = [url, prefix, str(rate), str(cap), str(secs), str(hold), out]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.worker.delivery.limiter_client", *args], cwd=ROOT
        )
        for _ in range(procs)
    ]
    client.set(out + ":go", 1)
    for child in children:
        assert child.wait(timeout=60) == 0
    rows = [tuple(map(int, r.split(b","))) for r in client.lrange(out, 0, -1)]
    return sorted((a, b) for a, b in rows)


def test_processes_together_never_exceed_the_rate_in_any_second(
    redis_url: str, client: redis.Redis
) -> None:
    prefix = f"lim{uuid.uuid4().hex[:6]}"
    rows = _run(redis_url, prefix, procs=3, rate=25, cap=50, secs=2.5, hold=0, client=client)
    grants = [g for g, _ in rows]
    assert max_in_any_window([float(g) for g in grants], 1_000_000) <= 25
    span = (grants[-1] - grants[0]) / 1_000_000
    assert len(grants) >= 25 * span * 0.9  # and the budget is used, not wasted


def test_in_flight_cap_holds_across_processes(redis_url: str, client: redis.Redis) -> None:
    prefix = f"lim{uuid.uuid4().hex[:6]}"
    rows = _run(redis_url, prefix, procs=3, rate=1000, cap=2, secs=1.0, hold=0.02, client=client)
    events = sorted([(g, 1) for g, _ in rows] + [(r, -1) for _, r in rows])
    level = peak = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    assert peak == 2
    assert len(rows) > 20


def test_a_429_with_retry_after_blocks_everyone_then_slows_the_rate(
    redis_url: str, client: redis.Redis
) -> None:
    prefix = f"lim{uuid.uuid4().hex[:6]}"
    gate = RedisRequestGate(Scripts(client, Keys(prefix)), rate=40, max_in_flight=10, slot_ttl=5)
    sec, us = client.time()
    gate.observe(429, 1.0)
    rows = _run(redis_url, prefix, procs=2, rate=40, cap=10, secs=1.6, hold=0, client=client)
    grants = [g for g, _ in rows]
    assert grants[0] >= sec * 1_000_000 + us + 1_000_000  # nobody before Retry-After ran out
    # Right after the block the shared rate is halved (then creeps back up): 40/s -> ~20/s.
    first_second = [g for g in grants if g < grants[0] + 1_000_000]
    assert len(first_second) <= 23


def test_slots_of_a_dead_holder_expire(client: redis.Redis) -> None:
    prefix = f"lim{uuid.uuid4().hex[:6]}"
    gate = RedisRequestGate(Scripts(client, Keys(prefix)), rate=1000, max_in_flight=1,
                            slot_ttl=0.2)  # fmt: skip
    gate.acquire_grant()  # never released: its holder "died"
    assert gate.try_acquire()[0] is None
    second = gate.acquire_grant()  # waits out the 0.2 s slot lease
    assert second.granted_at_us > 0


def test_a_late_waiter_does_not_push_the_schedule_back(client: redis.Redis) -> None:
    prefix = f"lim{uuid.uuid4().hex[:6]}"
    gate = RedisRequestGate(Scripts(client, Keys(prefix)), rate=2, max_in_flight=5,
                            slot_ttl=5, tolerance_us=200_000)  # fmt: skip
    sec, us = client.time()
    due = sec * 1_000_000 + us + 150_000  # the next grant is due in 0.15 s: within tolerance
    client.hset(Keys(prefix).rate_bucket, "tat", due)
    grant, _ = gate.try_acquire()
    assert grant is not None and grant.granted_at_us < due  # granted early, within tolerance
    # The next due time follows the schedule, not the grant, and the spacing covers tolerance.
    assert (
        int(client.hget(Keys(prefix).rate_bucket, "tat") or 0) == due + 600_000
    )  # (1 s + 0.2 s) / 2
    refused, wait = gate.try_acquire()
    assert refused is None and 0 < wait <= 0.6


def test_a_grant_that_aged_is_swapped_for_a_fresh_one_and_counted(client: redis.Redis) -> None:
    keys = Keys(f"lim{uuid.uuid4().hex[:6]}")
    gate = RedisRequestGate(Scripts(client, keys), rate=1000, max_in_flight=2, slot_ttl=5)
    aged = dataclasses.replace(gate.acquire_grant(), asked_at=time.monotonic() - 1)
    permit = Permit(gate, aged)
    permit.refresh()
    assert permit.grant.token != aged.token
    # The aged grant's slot went back; only the fresh one is held.
    assert client.zrange(keys.in_flight, 0, -1) == [permit.grant.token.encode()]
    assert client.hget(keys.metrics, counter_field("rate_limit_stale_grants")) == b"1"
    fresh = permit.grant
    permit.refresh()  # still fresh: kept
    assert permit.grant is fresh
