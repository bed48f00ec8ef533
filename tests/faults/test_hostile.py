"""Hostile input and hard failures through the whole relay (issue 12), in `make test-faults`:
real ingest and worker processes over a private Redis. Each class is also tested on its own in
tests/ingest/test_hostile.py, tests/ingest/test_protocol.py and tests/admin/; here they run
together against a live pipeline, which must answer each with a 4xx (never a 5xx), queue every
good event next to them, and digest whatever it accepted without a worker crash."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cmrelay.keys import Keys
from cmrelay.redis_server import PrivateRedis
from cmrelay.status import live_workers
from tests.support.processes import FAST_ENGINE_ENV, WorkerProcesses, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


# --- a worker started while Redis is full -------------------------------------------------
@pytest.fixture
def full_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.cleanup()


def test_a_worker_started_while_redis_is_full_waits_then_starts(
    full_redis: PrivateRedis, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(full_redis.url)
    client.set("ballast", b"x" * 2_000_000)
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
    keys = Keys("fullstart")
    env = {
        **FAST_ENGINE_ENV, "REDIS_URL": full_redis.url, "CMRELAY_KEY_PREFIX": keys.prefix,
        "CMRELAY_CONFIG": os.devnull, "CHARTMOGUL_WEBHOOK_URL": "http://127.0.0.1:9/unused",
    }  # fmt: skip
    workers = WorkerProcesses(env, tmp_path)
    workers.start(1)
    try:
        waiting = wait_for(
            lambda: any("worker start waits" in line for line in workers.stderr_lines(0))
            or workers.procs[0].poll() is not None,
            30, "the worker to report that it waits",
        )  # fmt: skip
        assert waiting and workers.procs[0].poll() is None, workers.logs()
        # Without the wait, Celery exits on kombu's first refused write within about a second.
        assert stays_alive(workers.procs[0], 4.0), workers.logs()
        assert live_workers(client, keys, 30, float(client.time()[0]) + 1) == []
        client.config_set("maxmemory", 0)  # room again: the waiting worker starts by itself
        wait_for(
            lambda: live_workers(client, keys, 30, float(client.time()[0]) + 1),
            30, "the worker's first heartbeat once Redis has room",
        )  # fmt: skip
        assert workers.procs[0].poll() is None, workers.logs()
    finally:
        workers.stop()
        client.close()


def stays_alive(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Watch `process` for `seconds` (an observation window): False as soon as it exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(0.1)
    return process.poll() is None
