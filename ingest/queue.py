"""The writer side of the ingest queue: all envelopes of a request in one atomic Lua step.

The script checks LLEN against INGEST_HIGH_WATER and LPUSHes every envelope, so a request is
either wholly queued or wholly refused (503), never half. The reader is the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cmrelay.keys import Keys
from cmrelay.lua import AsyncScripts
from cmrelay.status import WRITE_PROBE_MS, write_refusal
from ingest.errors import QueueUnavailable

RETRY_AFTER_UNREACHABLE = 5  # seconds: long enough for a Redis restart or failover
RETRY_AFTER_FULL = 30  # seconds: the workers need time to drain a full queue


@dataclass(frozen=True)
class QueueStatus:
    """What /ready reports."""

    length: int
    high_water: int
    pause: str | None
    write_problem: str | None = (
        None  # why Redis refuses writes (maxmemory), None when it takes them
    )

    @property
    def full(self) -> bool:
        """At or above the high-water mark: new writes are refused."""
        return self.length >= self.high_water


class QueueWriter:
    """Pushes envelopes onto `Keys.ingest_queue`; every Redis failure becomes QueueUnavailable."""

    def __init__(self, client: aioredis.Redis, keys: Keys, high_water: int) -> None:
        self.client = client
        self.keys = keys
        self.high_water = high_water
        self._scripts = AsyncScripts(client, keys)

    async def push(self, envelopes: list[bytes]) -> int:
        """Queue all envelopes atomically; return the queue length; raise QueueUnavailable."""
        if not envelopes:
            return 0
        try:
            length = await self._scripts.ingest_push(envelopes, high_water=self.high_water)
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(
                f"Redis did not acknowledge the write ({type(exc).__name__})",
                retry_after=RETRY_AFTER_UNREACHABLE,
            ) from None
        if length < 0:
            raise QueueUnavailable(
                "the queue is above its high-water mark", retry_after=RETRY_AFTER_FULL
            )
        return length

    async def status(self) -> QueueStatus:
        """Queue length, the worker's pause reason, and whether Redis takes a write (a full
        Redis answers reads but refuses every push); raise QueueUnavailable if unreachable."""
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.llen(self.keys.ingest_queue)
                pipe.get(self.keys.pause)
                pipe.set(self.keys.write_probe, b"1", px=WRITE_PROBE_MS)
                length, pause, wrote = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(
                f"Redis is not reachable ({type(exc).__name__})",
                retry_after=RETRY_AFTER_UNREACHABLE,
            ) from None
        for reply in (length, pause):
            if isinstance(reply, Exception):
                raise QueueUnavailable(
                    f"Redis did not answer ({type(reply).__name__})",
                    retry_after=RETRY_AFTER_UNREACHABLE,
                )
        problem = write_refusal(wrote) if isinstance(wrote, Exception) else None
        reason = pause.decode("utf-8", "replace") if isinstance(pause, bytes) else pause
        return QueueStatus(int(length), self.high_water, reason, problem)
