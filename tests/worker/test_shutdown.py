"""SIGTERM on a busy worker: the running delivery finishes and commits, and the entities its
scheduler had already claimed and published are delivered by another worker at once, not after
VISIBILITY_TIMEOUT. (With late acks and a prefetch of one task per thread, a worker reserves
nothing beyond what it runs; Celery's warm shutdown would hand such tasks back.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import wait_for
from tests.support.recorder_relay import Relay, company_event, message_id, new_entity, start_relay

VISIBILITY = 60.0  # far longer than the test waits: work that was not handed back would be late


@pytest.fixture
def relay(redis_url: str, tmp_path: Path) -> Iterator[Relay]:
    """One worker with a single thread: one delivery runs, the rest waits in the broker."""
    yield from start_relay(
        redis_url, tmp_path, workers=1, concurrency=1, VISIBILITY_TIMEOUT=str(VISIBILITY)
    )


def _warm_shutdown_begun(relay: Relay) -> bool:
    """Celery says so on stdout ("worker: Warm shutdown"), not through logging."""
    return "Warm shutdown" in (relay.workers.log_dir / "worker0.log").read_text(errors="replace")


def test_sigterm_finishes_the_running_delivery_and_strands_no_claimed_work(
    relay: Relay,
) -> None:
    release, arrived = threading.Event(), threading.Event()
    relay.recorder.on_write, relay.recorder.hold = arrived.set, release
    running_cid, running = new_entity()
    first = company_event(running_cid)
    relay.push(first)
    wait_for(arrived.is_set, 20, "the first delivery to reach ChartMogul")
    others = []
    for _ in range(3):
        cid, entity = new_entity()
        raw = company_event(cid)
        relay.push(raw)
        others.append((entity, message_id(raw)))
    wait_for(lambda: relay.client.zcard(relay.keys.due) >= 4, 20, "every entity claimed")
    worker = relay.workers.procs[0]
    worker.terminate()
    wait_for(lambda: _warm_shutdown_begun(relay), 20, "the warm shutdown to begin")
    relay.recorder.hold = None
    release.set()
    assert worker.wait(30) == 0
    assert relay.settled(running) and relay.recorder.creates[running] == 1
    handed_back_at = time.monotonic()
    relay.workers.start(1)
    for entity, mid in others:
        relay.wait_delivered(entity, [mid], timeout=30)
        assert relay.recorder.applied[entity] == [mid]
    assert time.monotonic() - handed_back_at < VISIBILITY / 2
