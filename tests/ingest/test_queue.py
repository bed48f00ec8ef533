"""The queue writer's Lua script, against the real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis

from cmrelay.keys import Keys
from cmrelay.redis_server import free_port
from ingest.errors import QueueUnavailable
from ingest.queue import QueueWriter


def _push(redis_url: str, envelopes: list[bytes], high_water: int) -> int:
    async def run() -> int:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await QueueWriter(client, Keys(), high_water).push(envelopes)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_a_full_batch_is_pushed_in_one_step_in_order(
    redis_url: str, redis_client: redis.Redis
) -> None:
    envelopes = [f"e{i}".encode() for i in range(2500)]  # more than one unpack() chunk
    assert _push(redis_url, envelopes, 10_000) == 2500
    assert redis_client.rpop(Keys().ingest_queue) == b"e0"  # the reader's end is the oldest
    assert redis_client.lpop(Keys().ingest_queue) == b"e2499"


def test_at_the_high_water_mark_nothing_of_the_request_is_pushed(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.lpush(Keys().ingest_queue, *[b"old"] * 5)
    with pytest.raises(QueueUnavailable) as info:
        _push(redis_url, [b"a", b"b"], 5)
    assert info.value.retry_after > 0
    assert redis_client.llen(Keys().ingest_queue) == 5
    assert _push(redis_url, [b"a", b"b"], 6) == 7  # under the mark, the whole request goes in


def test_an_unreachable_redis_is_queue_unavailable() -> None:
    with pytest.raises(QueueUnavailable, match="did not acknowledge"):
        _push(f"redis://127.0.0.1:{free_port()}/0", [b"a"], 10)
