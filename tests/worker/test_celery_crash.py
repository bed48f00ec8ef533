"""Crash safety with real worker processes: SIGKILL mid-delivery, SIGTERM mid-delivery."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.processes import wait_for
from tests.support.recorder_relay import Relay, company_event, message_id, new_entity, start_relay

VISIBILITY = 4.0


@pytest.fixture
def relay(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """One worker to start with; the tests add and kill workers themselves."""
    yield from start_relay(
        redis_url, tmp_path_factory.mktemp("crash"), workers=1,
        VISIBILITY_TIMEOUT=str(VISIBILITY),
    )  # fmt: skip


def _hold_writes(relay: Relay) -> tuple[threading.Event, threading.Event]:
    """Writes reaching the recorder wait for `release`; `arrived` is set when one does."""
    release, arrived = threading.Event(), threading.Event()
    relay.recorder.on_write = arrived.set
    relay.recorder.hold = release
    return release, arrived


def test_sigkill_mid_delivery_is_redone_once_within_the_visibility_timeout(relay: Relay) -> None:
    cid, entity = new_entity()
    release, arrived = _hold_writes(relay)
    raw = company_event(cid, traits={"plan": "pro"})
    relay.push(raw)
    wait_for(arrived.is_set, 20, "the create to reach the recorder")
    relay.workers.start(1)  # the survivor
    relay.workers.kill(0)
    killed_at = time.monotonic()
    relay.recorder.hold = None
    release.set()  # the create lands, but the dead worker never hears back
    relay.wait_delivered(entity, [message_id(raw)], timeout=VISIBILITY + 10)
    wait_for(lambda: len(relay.recorder.calls_for(entity)) >= 3, VISIBILITY + 10, "the redo")
    elapsed = time.monotonic() - killed_at
    print(f"\nredelivered {elapsed:.1f} s after SIGKILL (VISIBILITY_TIMEOUT={VISIBILITY})")
    assert elapsed <= VISIBILITY + 10
    assert relay.recorder.creates[entity] == 1  # the redo found it and did not create again
    assert relay.recorder.entities[entity]["plan"] == "pro"
    assert relay.dead_letters(entity) == []


def test_sigterm_mid_delivery_finishes_and_commits_before_exit(relay: Relay) -> None:
    cid, entity = new_entity()
    release, arrived = _hold_writes(relay)
    raw = company_event(cid)
    relay.push(raw)
    wait_for(arrived.is_set, 20, "the create to reach the recorder")
    worker = relay.workers.procs[0]
    worker.terminate()  # warm shutdown: the running delivery may finish
    threading.Timer(0.5, release.set).start()
    assert worker.wait(20) == 0
    assert relay.settled(entity)  # committed by the exiting worker, nothing left to redo
    assert relay.recorder.creates[entity] == 1
