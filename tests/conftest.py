"""Session fixtures: real services, started once per test session and cleaned between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from cmrelay.keys import Keys
from cmrelay.redis_server import PrivateRedis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[PrivateRedis | None]:
    """A private redis-server for the whole session, unless CMRELAY_TEST_REDIS_URL is given.

    Private by default: tests flush and even kill it, which must never touch a shared Redis.
    """
    if os.environ.get("CMRELAY_TEST_REDIS_URL"):
        yield None
        return
    server = PrivateRedis(appendonly=True).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_url(redis_server: PrivateRedis | None) -> str:
    """URL of the session's real Redis."""
    return os.environ.get("CMRELAY_TEST_REDIS_URL") or (
        redis_server.url if redis_server else "redis://127.0.0.1:6379/15"
    )


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a freshly flushed database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def keys() -> Keys:
    """Key names under the default prefix."""
    return Keys()
