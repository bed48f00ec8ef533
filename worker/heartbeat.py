"""Worker liveness in Redis: each worker process writes (host, pid, last scheduler tick) with a
TTL, and `cmrelay worker-health` checks that this host has a fresh one."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import orjson
import redis

from cmrelay.keys import Keys

log = logging.getLogger(__name__)


def beat(client: redis.Redis, keys: Keys, *, host: str, pid: int, tick: float, ttl: float) -> None:
    """Write one heartbeat; it expires after `ttl` unless written again."""
    payload = orjson.dumps({"host": host, "pid": pid, "tick": tick})
    client.set(keys.heartbeat(host, pid), payload, px=max(1, int(ttl * 1000)))


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
        with contextlib.suppress(redis.RedisError, OSError):  # else it expires by itself
            self._client.delete(self._keys.heartbeat(self.host, self.pid))


def check_health(
    client: redis.Redis, keys: Keys, *, host: str, ttl: float, ready: bool = False
) -> str | None:
    """None when this host has a worker whose scheduler ticked within `ttl` (and, for
    readiness, delivery is not paused); otherwise the one-line reason."""
    try:
        client.ping()
        found = list(client.scan_iter(match=keys.heartbeat_pattern(host), count=1000))
        beats = [b for b in client.mget(found) if b is not None] if found else []
        paused = client.get(keys.pause) if ready else None
    except (redis.RedisError, OSError) as exc:
        return f"Redis is not reachable ({type(exc).__name__})"
    now = time.time()
    ages = [now - float(orjson.loads(b)["tick"]) for b in beats]
    if not ages:
        return f"no worker heartbeat from host {host}"
    if min(ages) > ttl:
        return f"the worker scheduler on {host} last ticked {min(ages):.0f} s ago"
    if paused is not None:
        reason = paused.decode("utf-8", "replace") if isinstance(paused, bytes) else str(paused)
        return f"delivery is paused: {reason}"
    return None
