"""ChartMogul misbehaving: long 500 outage, 429 storm, answers slower than the timeout, resets.

Each scenario sends the known stream (duplicates and late events mixed in) through the real
ingest to real workers while the fault is on, then checks the final state and the counts.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.processes import wait_for

from .pipeline import Pipeline
from .scenario import run_scenario
from .stream import Mix

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def _accepted(pipe: Pipeline, at_least: int = 1) -> bool:
    return pipe.counters().get("accepted", 0) >= at_least


def _answers(pipe: Pipeline, status: str) -> int:
    return pipe.target.calls().get(status, 0)


def test_a_500_outage_longer_than_the_backoff_cap_loses_nothing(tmp_path: Path) -> None:
    def fault(pipe: Pipeline, sending: threading.Event) -> str:
        wait_for(lambda: _accepted(pipe, 50), 60, "the first events")
        started = time.monotonic()
        pipe.target.outage(6.0, "500")  # the cap (RETRY_BACKOFF_MAX) is 2 s
        wait_for(lambda: _answers(pipe, "500") >= 5, 30, "500 answers")
        wait_for(lambda: time.monotonic() - started > 6.0, 10, "the outage to end")
        return f"6 s outage, backoff cap 2 s; {pipe.counters().get('retries', 0)} retries"

    run_scenario(tmp_path, "500 outage", fault, mix=Mix(prefix="o500"), pace=0.05)


def test_a_429_storm_slows_everyone_down_and_loses_nothing(tmp_path: Path) -> None:
    def fault(pipe: Pipeline, sending: threading.Event) -> str:
        wait_for(lambda: _accepted(pipe, 50), 60, "the first events")
        started = time.monotonic()
        pipe.target.rate_storm()
        wait_for(lambda: _answers(pipe, "429") >= 8, 40, "429 answers")
        lasted = time.monotonic() - started
        pipe.target.clear()
        return f"every call 429 (Retry-After 1) for {lasted:.1f} s"

    summary, _, _ = run_scenario(tmp_path, "429 storm", fault, mix=Mix(prefix="s429"), pace=0.05)
    assert summary.dead_lettered == 0


def test_answers_slower_than_the_client_timeout_are_retried_without_duplicates(
    tmp_path: Path,
) -> None:
    def fault(pipe: Pipeline, sending: threading.Event) -> str:
        wait_for(lambda: _accepted(pipe, 50), 60, "the first events")
        pipe.target.slow(0.6, 1.6)  # CHARTMOGUL_TIMEOUT=1: about half the calls time out
        wait_for(lambda: pipe.counters().get("retries", 0) >= 5, 60, "timeouts to be retried")
        wait_for(sending.is_set, 120, "the stream to be sent")
        pipe.target.clear()
        return f"latency 0.6-1.6 s, timeout 1 s; {pipe.counters().get('retries', 0)} retries"

    run_scenario(
        tmp_path, "slow answers", fault, mix=Mix(prefix="slow", events=300), pace=0.1,
        CHARTMOGUL_TIMEOUT="1",
    )  # fmt: skip


def test_connection_resets_are_retried_and_lose_nothing(tmp_path: Path) -> None:
    def fault(pipe: Pipeline, sending: threading.Event) -> str:
        wait_for(lambda: _accepted(pipe, 50), 60, "the first events")
        started = time.monotonic()
        pipe.target.outage(4.0, "reset")
        wait_for(lambda: _answers(pipe, "reset") >= 5, 30, "connection resets")
        wait_for(lambda: time.monotonic() - started > 4.0, 10, "the resets to end")
        return f"4 s of TCP resets; {_answers(pipe, 'reset')} calls reset"

    run_scenario(tmp_path, "connection resets", fault, mix=Mix(prefix="rst"), pace=0.05)
