from __future__ import annotations

import redis

from cmrelay.redis_server import PrivateRedis, redis_answers


def test_private_redis_is_a_real_server_that_survives_restart_with_aof() -> None:
    server = PrivateRedis(appendonly=True).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.stop()
        assert not redis_answers(port=server.port)
        server.start()
        again = redis.Redis.from_url(server.url)
        assert again.get("k") == b"v"
        again.close()
    finally:
        server.cleanup()
