"""`cmrelay backfill` SIGKILLed at 3 random points and resumed ends with exactly the state of an
uninterrupted backfill into a fresh relay: no event queued twice, every reject counted once.

Both relays are the whole system (private Redis, ingest, 2 Celery workers, the sandbox at
ChartMogul's limits). COMPANY_CREATION=group and a history whose users each join one company
make the final state independent of the order in which concurrent accepters learn the links,
so the two states can be compared field by field.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.history import History, write_history
from tests.support.processes import ROOT, wait_for

from .pipeline import Pipeline, pipeline
from .targets import SandboxTarget

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]
SEED = 1414
KILLS = 3
BATCH = 10  # events per push: many transactions a kill can land between (or inside)
ENV = {"COMPANY_CREATION": "group"}


def _history(tmp: Path) -> History:
    return write_history(tmp / "history", files=4, events_per_file=1000, users=80,
                         companies=20, bad_every=41, seed=SEED, stable_groups=True)  # fmt: skip


def _backfill(pipe: Pipeline, history: History) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "cmrelay_cli", "backfill", str(history.files[0].parent),
            "--batch-size", str(BATCH)]  # fmt: skip
    log = (pipe.tmp / "backfill.log").open("ab")
    return subprocess.Popen(args, cwd=ROOT, env=pipe.env, stdout=log, stderr=log)


def _counter(pipe: Pipeline, name: str) -> int:
    return int(pipe.client.hget(pipe.keys.backfill_counters, name) or 0)


def _settled(pipe: Pipeline) -> None:
    wait_for(lambda: pipe.idle() and pipe.leases() == 0, 150, "the relay to settle", every=0.2)


def _state(pipe: Pipeline) -> dict[str, Any]:
    """Customers and contacts by external id, without what a fresh store numbers itself, nor
    custom_sources: which call set an attribute (on create: "Segment", added later: "API")
    follows how the events arrived in bursts, not what ChartMogul holds."""
    state = pipe.target.control.get("/state").json()  # type: ignore[attr-defined]
    by_uuid = {c["uuid"]: c["external_id"] for c in state["customers"]}
    volatile = {"id", "uuid", "customer_uuid", "lead_created_at", "data_source_uuid",
                "data_source_uuids", "chartmogul-url", "custom_sources"}  # fmt: skip
    customers = {c["external_id"]: {k: v for k, v in c.items() if k not in volatile}
                 for c in state["customers"]}  # fmt: skip
    contacts = {
        (c.get("external_id"), by_uuid.get(c["customer_uuid"])):
            {k: v for k, v in c.items() if k not in volatile}
        for c in state["contacts"]
    }  # fmt: skip
    assert len(customers) == len(state["customers"]), "a customer was created twice"
    assert len(contacts) == len(state["contacts"]), "a contact was created twice"
    return {"customers": customers, "contacts": contacts}


def _kill_at(pipe: Pipeline, history: History, target: int) -> None:
    """Start a backfill and SIGKILL it once `target` events are queued (over all runs)."""
    child = _backfill(pipe, history)
    wait_for(lambda: _counter(pipe, "queued") >= target or child.poll() is not None, 60,
             "the backfill to reach its kill point", every=0.001)  # fmt: skip
    assert child.poll() is None, "the backfill ended before its kill point"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    print(f"  SIGKILL with {_counter(pipe, 'queued')} queued (aimed at {target})")


def _killed_and_resumed(tmp: Path, history: History) -> tuple[dict[str, Any], dict[str, int]]:
    tmp.mkdir()
    rng = random.Random(SEED)
    points = sorted(rng.sample(range(history.valid // 20, history.valid * 9 // 10), KILLS))
    print(f"\nbackfill SIGKILL points (seed {SEED}): at {points} of {history.valid} queued")
    with pipeline(tmp, SandboxTarget(), **ENV) as pipe:
        wait_for(lambda: pipe.worker_ready(0) and pipe.worker_ready(1), 60, "workers")
        for point in points:  # a kill that overshot moves the next point past it
            _kill_at(pipe, history, max(point, _counter(pipe, "queued") + BATCH))
        child = _backfill(pipe, history)
        assert child.wait(120) == 0
        _settled(pipe)
        counts = {n: _counter(pipe, n) for n in ("read", "queued", "rejected", "ignored")}
        counts["duplicate"] = int(pipe.client.hget(pipe.keys.counters, "duplicate") or 0)
        return _state(pipe), counts


def _uninterrupted(tmp: Path, history: History) -> dict[str, Any]:
    tmp.mkdir()
    with pipeline(tmp, SandboxTarget(), **ENV) as pipe:
        wait_for(lambda: pipe.worker_ready(0) and pipe.worker_ready(1), 60, "workers")
        assert _backfill(pipe, history).wait(120) == 0
        _settled(pipe)
        assert int(pipe.client.hget(pipe.keys.counters, "duplicate") or 0) == 0
        return _state(pipe)


def test_a_backfill_killed_three_times_and_resumed_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    history = _history(tmp_path)
    killed, counts = _killed_and_resumed(tmp_path / "killed", history)
    fresh = _uninterrupted(tmp_path / "fresh", history)

    lines = history.valid + history.ignored + len(history.bad)
    assert counts["read"] == lines  # every line read once over the four runs
    assert counts["queued"] == history.valid  # every event queued once
    assert counts["rejected"] == len(history.bad)  # every bad line counted once
    assert counts["ignored"] == history.ignored
    assert counts["duplicate"] == 0  # no envelope reached the workers twice (dedupe hits)
    print(f"  {len(killed['customers'])} customers, {len(killed['contacts'])} contacts, "
          f"{counts['rejected']} rejects, both relays alike")  # fmt: skip
    assert len(killed["customers"]) >= 10 and killed["contacts"], "too little was delivered"
    assert sorted(killed["customers"]) == sorted(fresh["customers"])
    assert sorted(killed["contacts"], key=str) == sorted(fresh["contacts"], key=str)
    for name in ("customers", "contacts"):
        for key, want in fresh[name].items():
            assert killed[name][key] == want, f"{name} {key}: {killed[name][key]} != {want}"
