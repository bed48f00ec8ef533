"""Memory benchmark: ingest and worker RSS sampled over a long run through the whole pipeline.

    python bench/memory.py [--events 1000000] [--every 10] [--max-seconds 7200]

The real ingest (uvicorn) and 2 real workers (4 threads each) deliver a realistic trace
(re-identified users, often-updated groups; the same customers throughout, fresh messageIds
per chunk) to the sandbox with its limits off, so the run is CPU-bound rather than 40 req/s.
The sender keeps the backlog under --max-backlog. RSS comes from /proc/<pid>/status. Prints
one table; the relay is flat if the last rows look like the first ones after warm-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import machine  # noqa: E402
from cmrelay.status import live_workers  # noqa: E402
from sandbox.config import SandboxConfig  # noqa: E402
from tests.faults.pipeline import Pipeline  # noqa: E402
from tests.faults.stream import Mix, generate  # noqa: E402
from tests.faults.targets import API_KEY, DATA_SOURCE, SandboxTarget  # noqa: E402
from tests.support.processes import wait_for  # noqa: E402

UNLIMITED_ENV = {
    "COALESCE_WINDOW": "1.0", "CHARTMOGUL_RATE_LIMIT": "100000", "CHARTMOGUL_MAX_IN_FLIGHT": "16",
    "VISIBILITY_TIMEOUT": "300", "RETRY_WINDOW": "14400", "LOG_LEVEL": "warning",
    "SCHEDULER_INTERVAL": "0.05",
}  # fmt: skip


def rss_mb(pid: int) -> float:
    """Resident set size of one process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class UnlimitedSandbox(SandboxTarget):
    """The sandbox with its rate and concurrency limits off."""

    def __init__(self) -> None:
        import httpx

        from sandbox.runner import SandboxServer

        config = SandboxConfig(api_key=API_KEY, data_source_uuid=DATA_SOURCE, rate_limit=0,
                               max_in_flight=0)  # fmt: skip
        self.server = SandboxServer(config).start()
        self.control = httpx.Client(base_url=self.server.control_url, timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--chunk", type=int, default=5_000, help="events generated at a time")
    parser.add_argument("--max-backlog", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=7200)
    parser.add_argument("--mix", default="customers=2000,users_per_customer=5,group_share=0.3")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        pipe = Pipeline(Path(tmp), UnlimitedSandbox(), workers=2, concurrency=4, **UNLIMITED_ENV)
        try:
            return run(pipe, args)
        finally:
            pipe.close()


def run(pipe: Pipeline, args: argparse.Namespace) -> int:
    # LOG_LEVEL=warning keeps a 1M-event run's logs small, so Celery's info-level "ready." line
    # never appears: wait for both workers' heartbeats instead.
    wait_for(
        lambda: len(live_workers(pipe.client, pipe.keys, 30.0, time.time())) >= 2, 60, "workers"
    )
    sent = [0]
    stop_at = time.monotonic() + args.max_seconds
    failure: list[BaseException] = []

    def delivered() -> int:
        return pipe.counters().get("delivered", 0) + pipe.counters().get("unchanged", 0)

    def sender() -> None:
        try:
            chunk_no = 0
            while sent[0] < args.events and time.monotonic() < stop_at:
                size = min(args.chunk, args.events - sent[0])
                mix = Mix.parse(args.mix, events=size, duplicate_share=0, disorder_share=0,
                                prefix="mem", seed=chunk_no)  # fmt: skip
                events = generate(mix).sent
                for event in events:
                    event["messageId"] = f"{chunk_no}-{event['messageId']}"
                while sent[0] - delivered() > args.max_backlog and time.monotonic() < stop_at:
                    time.sleep(0.5)  # back-pressure from the client side: keep Redis bounded
                pipe.send(events, batch=100, deadline=600)
                sent[0] += size
                chunk_no += 1
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    started = time.monotonic()
    thread.start()
    ingest_pid = pipe.ingest.proc.pid if pipe.ingest.proc else 0
    pids = [ingest_pid, pipe.workers.procs[0].pid, pipe.workers.procs[1].pid]
    print("\n| elapsed s | sent | delivered | ingest MiB | worker 0 MiB | worker 1 MiB |")
    print("|---|---|---|---|---|---|")
    while time.monotonic() < stop_at and not failure:
        done = delivered()
        rss = [rss_mb(pid) for pid in pids]
        print(f"| {time.monotonic() - started:.0f} | {sent[0]:,} | {done:,} | {rss[0]:.1f} "
              f"| {rss[1]:.1f} | {rss[2]:.1f} |", flush=True)  # fmt: skip
        if done >= args.events and pipe.idle():
            break
        time.sleep(args.every)  # the sampling period
    if failure:
        raise failure[0]
    seconds = time.monotonic() - started
    print(f"\n{delivered():,} events delivered in {seconds:.0f} s "
          f"({delivered() / seconds:,.0f} events/s, limits off)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
