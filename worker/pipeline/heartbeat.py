"""Worker liveness in Redis: each worker process records (host, pid, last scheduler tick);
`cmrelay worker-health` (cmrelay.status.check_health) checks that this host has a fresh one."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import redis

from cmrelay.keys import Keys
from cmrelay.status import member

log = logging.getLogger(__name__)
FORGET_AFTER = 10  # TTLs: a dead worker's member is dropped by the next beat of any worker


def beat(client: redis.Redis, keys: Keys, *, host: str, pid: int, tick: float, ttl: float) -> None:
    """Record one worker's last tick and forget workers silent for FORGET_AFTER TTLs."""
    pipe = client.pipeline(transaction=False)
    pipe.zadd(keys.heartbeats, {member(host, pid): tick})
    pipe.zremrangebyscore(keys.heartbeats, "-inf", time.time() - FORGET_AFTER * ttl)
    pipe.execute()


class Heartbeat(threading.Thread):
    """Beats every ttl/6 with the scheduler's last tick; a stuck scheduler goes stale."""

    def __init__(
        self, client: redis.Redis, keys: Keys, ttl: float, last_tick: Callable[[], float]
    ) -> None:
        super().__init__(daemon=True, name="cmrelay-heartbeat")
        self._client, self._keys, self._ttl, self._last_tick = client, keys, ttl, last_tick
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                beat(self._client, self._keys, host=self.host, pid=self.pid,
                     tick=self._last_tick(), ttl=self._ttl)  # fmt: skip
            except (redis.RedisError, OSError):
                log.warning("could not write the worker heartbeat; retrying")
            if self._stop_event.wait(self._ttl / 6):
                return

    def stop(self) -> None:
        """Stop beating and remove the heartbeat: a stopped worker is not alive."""
        self._stop_event.set()
        self.join(timeout=5)
        with contextlib.suppress(redis.RedisError, OSError):  # else it goes stale by itself
            self._client.zrem(self._keys.heartbeats, member(self.host, self.pid))
