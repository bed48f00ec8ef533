"""Fixtures for every test: real services, started once per test session and cleaned between
tests, and the engine pieces built on them (settings, Engine, a scripted deliverer, a sandbox)."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from cmrelay.keys import Keys
from cmrelay.redis_server import PrivateRedis
from cmrelay.settings import Settings
from sandbox.runner import SandboxServer
from tests.doubles.http_recorder import RecordingServer
from tests.support.sandbox_relay import sandbox_config
from tests.support.scripted import ScriptedDeliverer
from worker.pipeline.engine import Engine


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


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Fast engine settings under a prefix of their own (no flush needed between tests)."""
    return dataclasses.replace(
        Settings(),
        redis_url=redis_url,
        key_prefix=f"t{uuid.uuid4().hex[:8]}",
        coalesce_window=0.0,
        retry_backoff_base=0.01,
        retry_backoff_max=0.05,
        pause_probe_interval=0.2,
        visibility_timeout=4.0,
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A ChartMogul sandbox over HTTP for one test module (limits off, one data source)."""
    with SandboxServer(sandbox_config()) as server:
        yield server


@pytest.fixture
def state(sandbox: SandboxServer) -> Callable[[], Any]:
    """Empties the sandbox; returns a reader of its whole store."""
    httpx.post(f"{sandbox.control_url}/reset", timeout=5).raise_for_status()
    return lambda: httpx.get(f"{sandbox.control_url}/state", timeout=5).json()


@pytest.fixture
def deliverer() -> ScriptedDeliverer:
    return ScriptedDeliverer()


@pytest.fixture
def engine(settings: Settings, deliverer: ScriptedDeliverer) -> Iterator[Engine]:
    eng = Engine.from_settings(settings)
    eng._deliverer = deliverer
    yield eng
    eng.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A fresh recording HTTP server per test (delivery client tests)."""
    with RecordingServer() as srv:
        yield srv
