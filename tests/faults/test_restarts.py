"""Redis restarted mid-stream (AOF on) and the ingest killed mid-batch: nothing accepted is lost,
and the client's retries plus dedupe give exactly-once effect."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.processes import wait_for

from .pipeline import Pipeline
from .scenario import run_scenario
from .stream import Mix

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]


def test_a_redis_restart_mid_stream_loses_nothing_accepted(tmp_path: Path) -> None:
    def fault(pipe: Pipeline, sending: threading.Event) -> str:
        wait_for(lambda: pipe.counters().get("accepted", 0) >= 100, 60, "the first events")
        refused_before = pipe.sending.answers.get("503", 0)
        pipe.redis.stop()  # SIGTERM: Redis writes its AOF out and exits
        stopped = time.monotonic()
        wait_for(
            lambda: pipe.sending.answers.get("503", 0) >= refused_before + 3
            and time.monotonic() - stopped >= 3,
            30, "the client to meet 503s for 3 s",
        )  # fmt: skip
        down = time.monotonic() - stopped
        pipe.redis.start()  # same port, same directory: the AOF is replayed
        refused = pipe.sending.answers.get("503", 0) - refused_before
        return f"Redis down {down:.1f} s (AOF everysec); ingest answered 503 x{refused}"

    _, _, pipe = run_scenario(
        tmp_path, "Redis restart", fault, mix=Mix(prefix="redis", events=600), pace=0.1,
        settle=180,
    )  # fmt: skip
    assert "503" in pipe.sending.answers


def test_the_ingest_killed_mid_batch_gives_exactly_once_effect(tmp_path: Path) -> None:
    kills = 3

    def fault(pipe: Pipeline, sending: threading.Event) -> str:
        for n in range(kills):
            want = 100 * (n + 1)
            wait_for(lambda w=want: pipe.counters().get("accepted", 0) >= w, 60, "more events")
            pipe.ingest.kill()  # SIGKILL, whatever request it is in the middle of
            pipe.ingest.start()  # same port; the client has been retrying meanwhile
        errors = sum(v for k, v in pipe.sending.answers.items() if not k.isdigit())
        return f"{kills} SIGKILLs of the ingest; {errors} client requests failed and were retried"

    _, _, pipe = run_scenario(
        tmp_path, "ingest SIGKILL x3", fault, mix=Mix(prefix="ingk", events=600), pace=0.05,
    )  # fmt: skip
    assert pipe.sending.retries >= 1
