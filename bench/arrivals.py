"""Arrival spacing at ChartMogul: how close the relay's calls come to 40 in one sliding second.

    python bench/arrivals.py [--customers 2000] [--runs 3] [--sandbox thread|process]

A backlog of new customers (one call each) is queued at once and delivered by two real workers
(2 x 4 threads, production settings) into the sandbox, which keeps every request's arrival
time. ChartMogul refuses a 41st request within any second; at 39/s the smallest span of 41
consecutive arrivals would be 40/39 s = 1.0256 s if nothing jittered, so the margin left is
(smallest span - 1 s). The sandbox runs as its own process, away from the load generator's
GIL, as ChartMogul is (`--sandbox thread`: in the bench process). Loopback only, bounded in
events and seconds. Prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.delivery import PRODUCTION_ENV, sandbox_calls  # noqa: E402
from bench.ingest import machine  # noqa: E402
from bench.traces import backlog  # noqa: E402
from cmrelay.metrics_store import counter_field  # noqa: E402
from tests.faults.pipeline import Pipeline  # noqa: E402
from tests.faults.targets import SandboxTarget  # noqa: E402
from tests.support.processes import wait_for  # noqa: E402

LIMIT = 40  # ChartMogul's requests in any sliding second


def arrivals(control: httpx.Client) -> list[dict[str, Any]]:
    """Every /v1 request the sandbox logged, oldest first."""
    found: list[dict[str, Any]] = []
    seq = 0
    while True:
        page = control.get("/requests", params={"since": seq}).json()["requests"]
        if not page:
            return [r for r in found if r["path"].startswith("/v1/")]
        found += page
        seq = page[-1]["seq"]


def run(customers: int, where: str, timeout: float) -> dict[str, Any]:
    """One backlog through the relay; the arrival statistics."""
    target = SandboxTarget(0.0, own_process=where == "process")
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(Path(tmp), target, workers=2, concurrency=4, **PRODUCTION_ENV)
        try:
            wait_for(lambda: pipe.worker_ready(0) and pipe.worker_ready(1), 60, "workers")
            started = time.monotonic()
            for phase in backlog(customers).phases:
                pipe.send(phase.events, batch=100, deadline=timeout)
                pipe.settle(timeout, len(phase.events))
            seconds = time.monotonic() - started
            logged = arrivals(target.control)
            _, status = sandbox_calls(target)
            raw = pipe.client.hget(pipe.keys.metrics, counter_field("rate_limit_stale_grants"))
            stale = int(raw or 0)
        finally:
            pipe.close()
    at = sorted(r["at"] for r in logged)
    spans = sorted(at[i + LIMIT] - at[i] for i in range(len(at) - LIMIT))
    gaps = sorted(b - a for a, b in itertools.pairwise(at))
    busy = at[-1] - at[0] if len(at) > 1 else 0.0
    return {
        "calls": len(at), "429s": status.get("429", 0), "stale": stale, "seconds": seconds,
        "rate": (len(at) - 1) / busy if busy else 0.0, "min_span": spans[0],
        "p1_span": spans[len(spans) // 100], "min_gap": gaps[0], "p50_gap": statistics.median(gaps),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000, help="backlog size (one call each)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--sandbox", choices=("thread", "process"), default="process",
        help="the sandbox in its own process (as ChartMogul is) or a thread",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600.0, help="bound per run, seconds")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"command: python bench/arrivals.py --customers {args.customers} --runs {args.runs} "
          f"--sandbox {args.sandbox}\n")  # fmt: skip
    print("| run | calls | calls/s while busy | smallest span of 41 arrivals | 1st percentile "
          "| smallest gap | median gap | stale grants | 429s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for n in range(1, args.runs + 1):
        r = run(args.customers, args.sandbox, args.timeout)
        cells = [str(n), f"{r['calls']:,}", f"{r['rate']:.2f}", f"{r['min_span']:.4f} s",
                 f"{r['p1_span']:.4f} s", f"{r['min_gap'] * 1000:.1f} ms",
                 f"{r['p50_gap'] * 1000:.1f} ms", str(r["stale"]), str(r["429s"])]  # fmt: skip
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
