"""Workers SIGKILLed mid-delivery, again and again; and how soon a dead worker's work comes back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.processes import wait_for

from .pipeline import Pipeline, make_target, pipeline
from .report import assert_exactly_once, record, summarise
from .scenario import run_scenario
from .stream import Mix, generate

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]
VISIBILITY = 20.0
KILLS = 12


def test_workers_killed_mid_delivery_twelve_times_lose_and_double_nothing(tmp_path: Path) -> None:
    def fault(pipe: Pipeline, sending: threading.Event) -> str:
        kills = 0
        alive = list(range(len(pipe.workers.procs)))
        while kills < KILLS:
            wait_for(pipe.leases, 60, "a delivery in progress", every=0.02)
            victim = next((i for i in alive if pipe.worker_ready(i)), None)
            if victim is None:
                wait_for(lambda: any(pipe.worker_ready(i) for i in alive), 60, "a ready worker")
                continue
            pipe.workers.kill(victim)
            kills += 1
            alive.remove(victim)
            pipe.workers.start(1)
            alive.append(len(pipe.workers.procs) - 1)
            wait_for(lambda: pipe.worker_ready(alive[-1]), 60, "the replacement worker")
        return f"{kills} SIGKILLs, each while >= 1 delivery was in flight; VISIBILITY_TIMEOUT=20"

    run_scenario(
        tmp_path, "worker SIGKILL x12", fault, mix=Mix(prefix="kill", customers=80, events=800),
        pace=0.5, latency=0.3, settle=180, workers=3, VISIBILITY_TIMEOUT=str(VISIBILITY),
    )  # fmt: skip


def test_a_killed_workers_delivery_comes_back_within_the_visibility_timeout(
    tmp_path: Path,
) -> None:
    stream = generate(Mix(prefix="vt", customers=1, events=1, duplicate_share=0))
    events = list(stream.unique.values())
    target = make_target()
    with pipeline(tmp_path, target, workers=1, VISIBILITY_TIMEOUT=str(VISIBILITY)) as pipe:
        expect = getattr(target, "expect", None)
        if expect:
            expect(events)
        target.slow(5.0, 5.0)  # every call takes 5 s: the delivery is surely in flight
        sent = pipe.send(stream.sent)
        wait_for(pipe.leases, 30, "the delivery to start")
        pipe.workers.start(1)
        wait_for(lambda: pipe.worker_ready(1), 60, "the second worker")
        pipe.workers.kill(0)
        killed_at = time.monotonic()
        target.clear()
        pipe.settle(VISIBILITY + 30, len(stream.unique))
        back = time.monotonic() - killed_at
        check = target.check(events)
        summary = summarise(
            "worker SIGKILL: time to come back", pipe, stream, sent, check,
            notes=f"delivered {back:.1f} s after the SIGKILL (VISIBILITY_TIMEOUT=20, aim <= 30 s)",
        )  # fmt: skip
        record(summary)
        assert_exactly_once(summary, check)
        assert back <= VISIBILITY + 10
