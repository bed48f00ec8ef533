"""Delivery benchmark: the relay against the ChartMogul sandbox (40 req/s limit on), next to a
naive baseline (one Celery task per event, bench/naive.py) measured in the same run.

    python bench/delivery.py [--events N] [--mix customers=200,users_per_customer=3,...]
                             [--latencies 0,0.05] [--latency-events N] [--skip-naive]

For each sandbox latency and each trace ((a) all-new customers, (b) a realistic trace of users
re-identified many times and groups updated often): the events are queued through the real
ingest as fast as it takes them (a backlog), real workers (2 x 4 threads, production settings)
deliver them, and the run ends when every event is delivered. Then end-to-end latency at low
load: one event at a time, ingest -> visible in the sandbox. Loopback only; every phase is
bounded in events and seconds. Prints tables.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import machine  # noqa: E402
from tests.faults.pipeline import AUTH, Pipeline  # noqa: E402
from tests.faults.stream import Mix, Stream, all_new, generate, group_event  # noqa: E402
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
        rate = self.events / self.seconds
        # Only calls ChartMogul accepted count as use of the ceiling; 429s are waste.
        share = (self.calls - self.status.get("429", 0)) / (self.seconds * CEILING)
        return (
            f"| {self.latency * 1000:.0f} ms | {self.trace} | {self.system} | {self.events:,} "
            f"| {self.seconds:.1f} | {rate:,.1f} | {self.calls / self.events:.2f} "
            f"| {share:.0%} | {self.busy_share:.0%} | {self.status.get('429', 0)} |"
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


def run_relay(tmp: Path, latency: float, trace: str, stream: Stream, timeout: float) -> Row:
    """Queue the stream through the ingest, let 2 workers deliver it; time until all delivered."""
    target = SandboxTarget(latency)
    pipe = Pipeline(tmp, target, workers=2, concurrency=4, **PRODUCTION_ENV)
    try:
        wait_for(lambda: pipe.worker_ready(0) and pipe.worker_ready(1), 60, "workers")
        base, _ = sandbox_calls(target)
        sampler = CallSampler(target)
        started = time.monotonic()
        pipe.send(stream.sent, batch=100, deadline=timeout)
        unique = len(stream.unique)

        def done() -> bool:
            c = pipe.counters()
            return c.get("delivered", 0) + c.get("dead_lettered", 0) >= unique and pipe.idle()

        wait_for(done, timeout, f"relay to deliver {unique} events", every=0.2)
        seconds = time.monotonic() - started
        total, status = sandbox_calls(target)
        dead = pipe.counters().get("dead_lettered", 0)
        if dead:
            print(f"  warning: {dead} events dead-lettered", flush=True)
        row = Row(latency, trace, "relay", unique, seconds, total - base, status)
        row.busy_share = sampler.busy_share()
        return row
    finally:
        pipe.close()


def run_naive(tmp: Path, latency: float, trace: str, stream: Stream, timeout: float) -> Row:
    """One Celery task per event (bench/naive.py), 2 worker processes x 4 threads."""
    from cmrelay.redis_server import PrivateRedis

    target = SandboxTarget(latency)
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
        events = list(stream.unique.values())
        base, _ = sandbox_calls(target)
        sampler = CallSampler(target)
        started = time.monotonic()
        with naive.app.connection_for_write() as conn:
            for event in events:
                naive.deliver_event.apply_async((event,), connection=conn)
        wait_for(lambda: int(client.get(naive.DONE_KEY) or 0) >= len(events), timeout,
                 "naive baseline to finish", every=0.2)  # fmt: skip
        seconds = time.monotonic() - started
        total, status = sandbox_calls(target)
        row = Row(latency, trace, "naive", len(events), seconds, total - base, status)
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


def end_to_end(tmp: Path, latency: float, count: int) -> list[float]:
    """Seconds from POST to the customer visible in the sandbox, one event at a time."""
    target = SandboxTarget(latency)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per relay phase")
    parser.add_argument("--naive-events", type=int, default=2_000, help="events per naive phase")
    parser.add_argument("--new-events", type=int, default=2_000, help="events of the all-new trace")
    parser.add_argument(
        "--mix",
        default="customers=1000,users_per_customer=5,group_share=0.3",
        help="realistic trace shape (tests/faults/stream.py Mix fields)",
    )
    parser.add_argument("--latencies", default="0,0.05", help="sandbox latencies, seconds")
    parser.add_argument("--latency-events", type=int, default=100, help="end-to-end samples")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--timeout", type=float, default=7200, help="bound per phase, seconds")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    for latency in (float(x) for x in args.latencies.split(",")):
        traces = {
            "all-new": (all_new(args.new_events, prefix="new"), all_new(
                min(args.new_events, args.naive_events), prefix="new")),
            "realistic": (
                generate(Mix.parse(args.mix, events=args.events, duplicate_share=0,
                                   disorder_share=0, prefix="r")),
                generate(Mix.parse(args.mix, events=args.naive_events, duplicate_share=0,
                                   disorder_share=0, prefix="r")),
            ),
        }  # fmt: skip
        for name, (relay_stream, naive_stream) in traces.items():
            with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
                rows.append(run_relay(Path(tmp), latency, name, relay_stream, args.timeout))
                print(rows[-1].line(), flush=True)
            if not args.skip_naive:
                with tempfile.TemporaryDirectory(prefix="bench-naive-") as tmp:
                    rows.append(run_naive(Path(tmp), latency, name, naive_stream, args.timeout))
                    print(rows[-1].line(), flush=True)
    print("\n| sandbox latency | trace | system | events | seconds | events/s | calls/event "
          "| share of 40 req/s, whole phase | while calls are made | 429s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
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
