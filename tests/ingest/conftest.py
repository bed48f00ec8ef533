"""A real uvicorn server running the ingest on a free loopback port, against the real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace

import httpx
import pytest
import redis

from cmrelay.envelope import Envelope
from cmrelay.keys import Keys
from cmrelay.redis_server import free_port
from cmrelay.settings import Secret, Settings
from ingest.server import uvicorn_config
from tests.servers import serve_in_thread

WRITE_KEY = "wk-test-123"
SHARED_SECRET = "shh-its-a-secret"


def ingest_settings(redis_url: str, **overrides: object) -> Settings:
    """Settings for a test ingest: one write key, a shared secret, the session's Redis."""
    base = Settings(
        redis_url=redis_url,
        segment_write_keys=(Secret(WRITE_KEY), Secret("wk-second")),
        segment_shared_secret=Secret(SHARED_SECRET),
        log_level="WARNING",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def running(settings: Settings) -> AbstractContextManager[str]:
    """Serve the ingest in a thread until the block ends; yield its base URL."""
    return serve_in_thread(uvicorn_config(settings, "127.0.0.1", free_port()), "ingest-under-test")


@pytest.fixture(scope="module")
def ingest_url(redis_url: str) -> Iterator[str]:
    """One ingest server for the test module (write keys and shared secret set)."""
    with running(ingest_settings(redis_url)) as url:
        yield url


@pytest.fixture
def http(ingest_url: str, redis_client: redis.Redis) -> Iterator[httpx.Client]:
    """An HTTP client on the module's ingest; Redis is flushed before each test."""
    with httpx.Client(base_url=ingest_url, timeout=10) as client:
        yield client


def queued(client: redis.Redis, prefix: str = "cmrelay") -> list[Envelope]:
    """Every envelope on the ingest queue, oldest first (the order the worker reads them)."""
    raw = client.lrange(Keys(prefix).ingest_queue, 0, -1)
    return [Envelope.from_bytes(item) for item in reversed(raw)]
