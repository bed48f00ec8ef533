"""Heartbeats: only this host's fresh scheduler tick makes a worker healthy."""

from __future__ import annotations

import time
import uuid

import redis

from cmrelay.keys import Keys
from cmrelay.status import check_health, live_workers
from worker.pipeline.heartbeat import FORGET_AFTER, beat


def test_a_fresh_tick_on_another_host_does_not_make_this_host_healthy(
    client: redis.Redis,
) -> None:
    keys = Keys(f"hb{uuid.uuid4().hex[:6]}")
    beat(client, keys, host="other", pid=1, tick=time.time(), ttl=30)
    assert check_health(client, keys, host="here", ttl=30) == "no worker heartbeat from host here"
    beat(client, keys, host="here", pid=2, tick=time.time(), ttl=30)
    assert check_health(client, keys, host="here", ttl=30) is None


def test_a_stuck_scheduler_goes_stale_and_long_dead_workers_are_forgotten(
    client: redis.Redis,
) -> None:
    keys, now = Keys(f"hb{uuid.uuid4().hex[:6]}"), time.time()
    beat(client, keys, host="here", pid=1, tick=now - 45, ttl=30)  # beats, but the loop is stuck
    problem = check_health(client, keys, host="here", ttl=30)
    assert problem is not None and problem.startswith("the worker heartbeat on here is 4")
    beat(client, keys, host="dead", pid=9, tick=now - FORGET_AFTER * 30 - 1, ttl=30)
    beat(client, keys, host="live", pid=3, tick=now, ttl=30)
    assert live_workers(client, keys, 30, now) == ["live|3"]
    assert client.zcard(keys.heartbeats) == 2  # "dead" dropped, the stuck one still listed
