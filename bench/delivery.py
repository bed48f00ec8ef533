"""Delivery benchmark: ChartMogul calls per event on traces shaped like real workspaces, for the
relay, the relay with its confirmed-state record off, and a naive baseline (one Celery task per
event, bench/naive.py), against the ChartMogul sandbox with its 40 req/s limit on.

    python bench/delivery.py [--scale 1.0] [--pace 200] [--latencies 0] [--latency-events N]
                             [--naive-events N] [--skip-naive] [--systems relay,record-off]

Traces (bench/traces.py): repeats (creation, then 3 rounds that change nothing), all-new
customers, a new contact on each known customer, a migration (every customer already in
ChartMogul, the relay cold) and a realistic day (mostly unchanged repeats). Events go through the
real ingest at a steady pace (--pace events/s, customers' events spread out), real workers
(2 x 4 threads, production settings) deliver them, and each phase is settled before the next.
Loopback only; every phase is bounded in events and seconds. Prints tables.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import machine  # noqa: E402
from bench.traces import (  # noqa: E402
    Trace,
    all_new,
    backlog,
    migration,
    new_contacts,
    realistic,
    repeats,
)
from tests.faults.pipeline import AUTH, Pipeline  # noqa: E402
from tests.faults.stream import group_event  # noqa: E402
from tests.faults.targets import API_KEY, DATA_SOURCE, SandboxTarget  # noqa: E402
from tests.support.processes import wait_for  # noqa: E402

CEILING = 40.0  # ChartMogul's documented limit, requests/s
# Production defaults (README), so the numbers are what a user gets out of the box.
PRODUCTION_ENV = {
    "COALESCE_WINDOW": "1.0", "RETRY_BACKOFF_BASE": "1", "RETRY_BACKOFF_MAX": "600",
    "RETRY_WINDOW": "14400", "VISIBILITY_TIMEOUT": "300", "CHARTMOGUL_TIMEOUT": "10",
    "SCHEDULER_INTERVAL": "0.05", "LOG_LEVEL": "info",  # Pipeline waits for Celery's info "ready."
}  # fmt: skip


@dataclass
class Row:
    """One measured phase."""

    latency: float
    trace: str
    system: str
    events: int
    seconds: float
    calls: int
    status: dict[str, int]
    busy_share: float = 0.0  # accepted calls/s over 40 while calls were being made

    def line(self) -> str:
        per_event = self.calls / self.events if self.events else 0.0
        ceiling = f"{CEILING / per_event:,.0f}" if per_event else "unbounded"
        return (
            f"| {self.latency * 1000:.0f} ms | {self.trace} | {self.system} | {self.events:,} "
            f"| {self.calls:,} | {per_event:.3f} | {ceiling} | {self.busy_share:.0%} "
            f"| {self.status.get('429', 0)} |"
        )


class CallSampler:
    """Polls the sandbox's counters; the busy window runs from the first to the last call."""

    def __init__(self, target: SandboxTarget, every: float = 0.25) -> None:
        self.target, self.every = target, every
        self.samples: list[tuple[float, int, int]] = []  # (time, calls, 429s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total, status = sandbox_calls(self.target)
            self.samples.append((time.monotonic(), total, status.get("429", 0)))
            self._stop.wait(self.every)  # the sampling period

    def busy_share(self) -> float:
        """Accepted (non-429) calls per second over CEILING, from the first to the last call."""
        self._stop.set()
        self._thread.join()
        base, final = self.samples[0][1], self.samples[-1][1]
        first = next((s for s in self.samples if s[1] > base), None)
        last = next((s for s in self.samples if s[1] >= final), None)
        if first is None or last is None or last[0] <= first[0]:
            return 0.0
        before = max((s for s in self.samples if s[0] < first[0]), key=lambda s: s[0])
        accepted = (last[1] - before[1]) - (last[2] - before[2])
        return accepted / ((last[0] - before[0]) * CEILING)


def sandbox_calls(target: SandboxTarget) -> tuple[int, dict[str, int]]:
    stats = target.control.get("/stats").json()
    return int(stats["total"]), {str(k): int(v) for k, v in stats["by_status"].items()}


def run_relay(
    tmp: Path, latency: float, trace: Trace, system: str, *, pace: float, timeout: float
) -> Row:
    """Send the trace phase by phase through the ingest; count calls of the measured phases."""
    target = SandboxTarget(latency, own_process=True)
    env = {**PRODUCTION_ENV, **({"CONFIRMED_STATE_TTL": "0"} if system == "record off" else {})}
    pipe = Pipeline(tmp, target, workers=2, concurrency=4, **env)
    try:
        wait_for(lambda: pipe.worker_ready(0) and pipe.worker_ready(1), 60, "workers")
        calls, status, seconds, events, settled = 0, Counter[str](), 0.0, 0, 0
        sampler: CallSampler | None = None
        for phase in trace.phases:
            if phase.cold:
                forget_everything(pipe)
                settled = 0  # the counters went with everything else
            base, base_status = sandbox_calls(target)
            if phase.measured and sampler is None:
                sampler = CallSampler(target)
            started = time.monotonic()
            batch = 100 if phase.backlog else 20
            gap = 0.0 if phase.backlog else batch / pace
            pipe.send(phase.events, batch=batch, deadline=timeout, pace=gap)
            settled += len(phase.events)
            pipe.settle(timeout, settled)
            total, after = sandbox_calls(target)
            if phase.measured:
                spent = total - base
                per = spent / len(phase.events)
                print(f"  {trace.name} / {system} / {phase.name}: {len(phase.events):,} "
                      f"events, {spent:,} calls, {per:.3f} calls/event", flush=True)  # fmt: skip
                seconds += time.monotonic() - started
                events += len(phase.events)
                calls += total - base
                status.update({k: v - base_status.get(k, 0) for k, v in after.items()})
        dead = pipe.counters().get("dead_lettered", 0)
        if dead:
            print(f"  warning: {dead} events dead-lettered", flush=True)
        if system == "relay":
            print(f"  {trace.name}: {record_memory(pipe)}", flush=True)
        row = Row(latency, trace.name, system, events, seconds, calls, dict(status))
        row.busy_share = sampler.busy_share() if sampler else 0.0
        return row
    finally:
        pipe.close()


def record_memory(pipe: Pipeline, sample: int = 500) -> str:
    """Redis memory of the confirmed-state record per customer (MEMORY USAGE, sampled)."""
    keys = []
    for key in pipe.client.scan_iter(match=pipe.keys.confirmed("*"), count=1000):
        keys.append(key)
        if len(keys) >= sample:
            break
    if not keys:
        return "no confirmed-state records"
    sizes = [int(pipe.client.memory_usage(k) or 0) for k in keys]  # type: ignore[arg-type]
    return (f"confirmed-state record: {sum(sizes) / len(sizes):.0f} bytes per customer "
            f"(MEMORY USAGE, {len(sizes)} sampled)")  # fmt: skip


def forget_everything(pipe: Pipeline) -> None:
    """A fresh install: every key of the relay gone (Celery's broker keys stay)."""
    keys = list(pipe.client.scan_iter(match=f"{pipe.keys.prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        pipe.client.delete(*keys[start : start + 1000])


def run_naive(tmp: Path, latency: float, trace: Trace, limit: int, timeout: float) -> Row:
    """One Celery task per event (bench/naive.py), 2 worker processes x 4 threads."""
    from cmrelay.redis_server import PrivateRedis

    target = SandboxTarget(latency, own_process=True)
    server = PrivateRedis(appendonly=True).start()
    env = {**os.environ, "NAIVE_BROKER": server.url, "NAIVE_API_BASE": target.server.base_url,
           "NAIVE_API_KEY": API_KEY, "NAIVE_DATA_SOURCE": DATA_SOURCE,
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    procs = []
    client = redis.Redis.from_url(server.url)
    try:
        for n in range(2):
            log = (tmp / f"naive{n}.log").open("wb")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "naive", "worker", "--pool", "threads",
                 "-c", "4", "-n", f"naive{n}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel", "WARNING"],
                cwd=ROOT / "bench", env=env, stdout=log, stderr=log,
            ))  # fmt: skip
        sys.path.insert(0, str(ROOT / "bench"))
        import naive

        naive.app.conf.broker_url = server.url
        for phase in trace.phases:
            if not phase.measured:  # what the relay saw before: the naive one sees it too
                deliver_all(naive, client, phase.events, timeout)
        events = trace.measured[:limit]
        base, _ = sandbox_calls(target)
        sampler = CallSampler(target)
        started = time.monotonic()
        deliver_all(naive, client, events, timeout)
        seconds = time.monotonic() - started
        total, status = sandbox_calls(target)
        row = Row(latency, trace.name, "naive", len(events), seconds, total - base, status)
        row.busy_share = sampler.busy_share()
        return row
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        client.close()
        server.cleanup()
        target.stop()


def deliver_all(naive: Any, client: redis.Redis, events: list[Any], timeout: float) -> None:
    """Queue one naive task per event and wait until all are done."""
    goal = int(client.get(naive.DONE_KEY) or 0) + len(events)  # type: ignore[arg-type]
    with naive.app.connection_for_write() as conn:
        for event in events:
            naive.deliver_event.apply_async((event,), connection=conn)
    wait_for(lambda: int(client.get(naive.DONE_KEY) or 0) >= goal, timeout,  # type: ignore[arg-type]
             "naive baseline to finish", every=0.2)  # fmt: skip


def end_to_end(tmp: Path, latency: float, count: int) -> list[float]:
    """Seconds from POST to the customer visible in the sandbox, one event at a time."""
    target = SandboxTarget(latency, own_process=True)
    pipe = Pipeline(tmp, target, workers=2, concurrency=4, **PRODUCTION_ENV)
    out: list[float] = []
    try:
        wait_for(lambda: pipe.worker_ready(0) and pipe.worker_ready(1), 60, "workers")
        with httpx.Client(headers={"Authorization": AUTH}, timeout=10) as http:
            for n in range(count):
                gid = f"e2e-c{n % 10}"
                event = group_event("e2e", gid, n, _now_iso())
                started = time.monotonic()
                body = orjson.dumps({"batch": [event]})
                headers = {"Content-Type": "application/json"}
                response = http.post(f"{pipe.ingest.url}/v1/batch", content=body, headers=headers)
                response.raise_for_status()
                wait_for(lambda g=gid, s=n: _seats(target, g) == s, 30, "the event", every=0.01)
                out.append(time.monotonic() - started)
        return out
    finally:
        pipe.close()


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _seats(target: SandboxTarget, gid: str) -> Any:
    state = target.control.get("/state").json()
    for customer in state["customers"]:
        if customer["external_id"] == gid:
            return customer["attributes"]["custom"].get("seats")
    return None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def traces(scale: float) -> list[Trace]:
    """The default traces, `scale` times their default size."""
    n = lambda count: max(4, int(count * scale))  # noqa: E731
    return [
        backlog(n(2000)),
        repeats(n(200), users=2),
        all_new(n(600)),
        new_contacts(n(300)),
        migration(n(200), users=2),
        realistic(n(150), users=3, events=n(3000)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="trace sizes x this")
    parser.add_argument("--pace", type=float, default=200, help="events/s sent to the ingest")
    parser.add_argument("--systems", default="relay,record off", help="relay variants to run")
    parser.add_argument("--naive-events", type=int, default=150, help="events per naive phase")
    parser.add_argument("--latencies", default="0", help="sandbox latencies, seconds")
    parser.add_argument("--latency-events", type=int, default=50, help="end-to-end samples")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--traces", default="", help="only these traces (comma-separated)")
    parser.add_argument("--timeout", type=float, default=1800, help="bound per phase, seconds")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for latency in (float(x) for x in args.latencies.split(",")):
        wanted = {t.strip() for t in args.traces.split(",") if t.strip()}
        for trace in (t for t in traces(args.scale) if not wanted or t.name in wanted):
            for system in systems:
                with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
                    rows.append(run_relay(Path(tmp), latency, trace, system, pace=args.pace,
                                          timeout=args.timeout))  # fmt: skip
                    print(rows[-1].line(), flush=True)
            if not args.skip_naive:
                with tempfile.TemporaryDirectory(prefix="bench-naive-") as tmp:
                    rows.append(run_naive(Path(tmp), latency, trace, args.naive_events,
                                          args.timeout))  # fmt: skip
                    print(rows[-1].line(), flush=True)
    print("\n| sandbox latency | trace | system | events | calls | calls/event "
          "| events/s at 40 req/s | share of 40 req/s while calls are made | 429s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row.line())
    if not args.latency_events:
        return 0
    print("\nend to end (ingest POST -> visible in the sandbox), one event at a time:")
    print("| sandbox latency | samples | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    for latency in (float(x) for x in args.latencies.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
            samples = end_to_end(Path(tmp), latency, args.latency_events)
        print(f"| {latency * 1000:.0f} ms | {len(samples)} | {pct(samples, 0.5):.0f} "
              f"| {pct(samples, 0.99):.0f} | {max(samples) * 1000:.0f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
