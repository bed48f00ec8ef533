"""Backfill benchmark: reading and queueing speed on one core with flat memory, and live latency
while a backfill keeps ChartMogul's 40 req/s ceiling busy.

    python bench/backfill.py [--scale 1.0] [--parts read,live] [--control] [--cache DIR]

(a) read: 1M events (x scale) in one NDJSON.gz written by tests/support/history.py (cached
    under --cache), read and queued by `ingest.backfill.Backfill` in a child process pinned to
    one core (os.sched_setaffinity; a private redis-server, AOF everysec, pinned to another core
    when there is one). A drainer empties the ingest list as it fills, counting what it took, so
    Redis stays small. Reports events/s and the child's RSS at 10 %, 50 % and 100 % of the file.
(b) live: the sandbox (40 req/s, 20 in flight), the real ingest and 2 real Celery workers
    (4 threads each, production settings), `cmrelay backfill` of a history sized to keep the
    ceiling busy for about 60 s (x scale), and live Identify calls POSTed to the ingest at
    --live-rate per second meanwhile (--control: also without the backfill; --live-rate 0:
    the backfill alone, for its use of the ceiling). A live event's
    latency runs from the ingest's 200 to its first request in the sandbox's log
    (GET /_sandbox/requests); the backfill's share is that of the requests answered while at
    least one live event was waiting.
Every process it starts is stopped by its pid. Prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.delivery import PRODUCTION_ENV, CallSampler, pct  # noqa: E402
from bench.ingest import machine  # noqa: E402
from bench.memory import rss_mb  # noqa: E402
from cmrelay.keys import Keys  # noqa: E402
from cmrelay.redis_server import PrivateRedis  # noqa: E402
from tests.faults.pipeline import AUTH, Pipeline  # noqa: E402
from tests.faults.targets import SandboxTarget  # noqa: E402
from tests.support.history import write_history  # noqa: E402
from tests.support.processes import wait_for  # noqa: E402
from worker.pipeline.finish import BACKFILL_DELIVERED  # noqa: E402

READ_EVENTS = 1_000_000
READ_GOAL = 20_000  # events/s on one core
LIVE_P50_GOAL, LIVE_P99_GOAL = 1.5, 3.0
# The history for (b): ~3 calls per event on the sandbox once repeats are left out (measured:
# 2,400 events keep 40 req/s busy for about 60 s).
LIVE_BACKFILL_EVENTS = 2_400
LIVE_SECONDS = 60.0
FRACTIONS = (0.1, 0.5, 1.0)


# --- (a) reading and queueing ----------------------------------------------------------------


def history_file(cache: Path, events: int) -> Path:
    """One NDJSON.gz of `events` lines (cached: written once per size)."""
    directory = cache / f"read-{events}"
    path = directory / "2024-01-01.ndjson.gz"
    done = directory / ".complete"
    if not done.exists():
        print(f"writing {events:,} events to {path} (once; cached)", flush=True)
        write_history(directory, files=1, events_per_file=events, users=50_000,
                      companies=10_000, bad_every=997, gzip_files="all",
                      record_ids=False)  # fmt: skip
        done.write_text("")
    return path


def child(path: str, url: str, prefix: str, core: int) -> int:
    """The backfill process of (a): pinned, it reads the file and prints its numbers as JSON."""
    os.sched_setaffinity(0, {core})
    from ingest.backfill import Backfill

    client = redis.Redis.from_url(url)
    rss: dict[str, float] = {"start": rss_mb(os.getpid())}
    marks = list(FRACTIONS)

    def progress(tally: Any) -> None:
        share = tally.bytes_read / tally.to_read if tally.to_read else 0.0
        while marks and share >= marks[0]:
            rss[f"{marks.pop(0):.0%}"] = rss_mb(os.getpid())

    backfill = Backfill(client, Keys(prefix), high_water=10_000_000, on_progress=progress)
    started = time.perf_counter()
    tally = backfill.run([Path(path)])
    seconds = time.perf_counter() - started
    rss.setdefault("100%", rss_mb(os.getpid()))
    print(json.dumps({"read": tally.read, "queued": tally.queued, "rejected": tally.rejected,
                      "seconds": seconds, "rss": rss, "waits": backfill.waits}))  # fmt: skip
    return 0


def read_and_queue(cache: Path, events: int) -> dict[str, Any]:
    """Run the pinned child against a private Redis while a drainer empties the queue."""
    path = history_file(cache, events)
    server = PrivateRedis(appendonly=True).start()
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1 and server.process is not None:  # Redis off the backfill's core
        os.sched_setaffinity(server.process.pid, set(cores[1:]))
    keys = Keys("bfbench")
    client = redis.Redis.from_url(server.url)
    drained = [0]
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            pipe = client.pipeline(transaction=True)
            pipe.llen(keys.ingest_queue)
            pipe.delete(keys.ingest_queue)
            drained[0] += int(pipe.execute()[0])
            stop.wait(0.2)  # the drain period: Redis holds at most ~0.2 s of pushes

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        args = [sys.executable, __file__, "--child", str(path), "--redis", server.url,
                "--prefix", keys.prefix, "--core", str(cores[0])]  # fmt: skip
        out = subprocess.run(args, check=True, capture_output=True, cwd=ROOT, timeout=1800)
        result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    finally:
        stop.set()
        drainer.join()
        drained[0] += int(client.llen(keys.ingest_queue))
        client.close()
        server.cleanup()
    result["drained"] = drained[0]
    result["file_mb"] = path.stat().st_size / 1024**2
    result["core"] = cores[0]
    return result


# --- (b) live latency during a backfill --------------------------------------------------------


@dataclass
class LiveRun:
    """What (b) saw."""

    accepted: dict[str, float] = field(default_factory=dict)  # live user -> wall time of the 200
    first_call: dict[str, float] = field(default_factory=dict)  # live user -> first request
    live_calls: int = 0
    backfill_calls: int = 0  # requests answered while a live event was waiting
    busy_share: float = 0.0
    backfill_events: int = 0
    backfill_left: int = 0  # backfilled events not yet delivered when the live window ended


def live_event(n: int) -> tuple[str, dict[str, Any]]:
    """A live Identify of a user of its own (the id is fixed-width: no id is another's prefix)."""
    user = f"live-{n:05d}"
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    return user, {"type": "identify", "userId": user, "messageId": f"{user}-m",
                  "timestamp": stamp, "traits": {"email": f"{user}@example.com",
                                                 "name": f"Live {n}"}}  # fmt: skip


def live_latency(tmp: Path, scale: float, rate: float, *, backfill: bool = True) -> LiveRun:
    """Backfill into the whole relay while live events arrive; see the sandbox's request log.
    Without `backfill`, the live events alone: the control row."""
    events = max(200, int(LIVE_BACKFILL_EVENTS * scale))
    history = write_history(tmp / "history", files=1, events_per_file=events,
                            users=events // 2, companies=events // 6, bad_every=97,
                            gzip_files="all")  # fmt: skip
    target = SandboxTarget()
    pipe = Pipeline(tmp, target, workers=2, concurrency=4, **PRODUCTION_ENV)
    run = LiveRun(backfill_events=history.valid if backfill else 0)
    proc: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: pipe.worker_ready(0) and pipe.worker_ready(1), 60, "workers")
        sampler = CallSampler(target)
        if backfill:
            with (tmp / "backfill.log").open("wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "cmrelay_cli", "backfill", str(history.files[0])],
                    cwd=ROOT, env=pipe.env, stdout=log, stderr=log,
                )  # fmt: skip
            started = int(target.control.get("/stats").json()["total"])
            wait_for(lambda: int(target.control.get("/stats").json()["total"]) >= started + 80,
                     120, "the backfill to reach the ceiling", every=0.1)  # fmt: skip
        send_live(pipe, run, max(10.0, LIVE_SECONDS * scale) * 0.85, rate)
        run.backfill_left = backfill_left(pipe)
        wait_for(lambda: len(first_calls(target, run)) == len(run.accepted), 120,
                 "every live event's first request", every=0.5)  # fmt: skip
        run.busy_share = sampler.busy_share()
        share_while_waiting(target, run)
        return run
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        pipe.close()


def send_live(pipe: Pipeline, run: LiveRun, seconds: float, rate: float) -> None:
    """POST one live Identify every 1/rate s through the real ingest for `seconds`."""
    if rate <= 0:  # --live-rate 0: the backfill alone, for its use of the ceiling
        time.sleep(seconds)
        return
    stop_at = time.monotonic() + seconds
    n = 0
    with httpx.Client(headers={"Authorization": AUTH}, timeout=10) as http:
        while time.monotonic() < stop_at:
            user, event = live_event(n)
            body = orjson.dumps({"batch": [event]})
            response = http.post(f"{pipe.ingest.url}/v1/batch", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
            response.raise_for_status()
            run.accepted[user] = time.time()
            n += 1
            time.sleep(1 / rate)  # a steady client at `rate` events/s


def backfill_left(pipe: Pipeline) -> int:
    """Backfilled events queued but not yet through delivery (the workers' own counter)."""
    queued = int(pipe.client.hget(pipe.keys.backfill_counters, "queued") or 0)
    delivered = int(pipe.client.hget(pipe.keys.counters, BACKFILL_DELIVERED) or 0)
    return queued - delivered


def _log(target: SandboxTarget) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = target.control.get("/requests", params={"since": 0}).json()[
        "requests"
    ]
    for entry in entries:
        entry["text"] = f"{entry['path']}?{entry['query']}\n{json.dumps(entry['body'])}"
    return entries


def first_calls(target: SandboxTarget, run: LiveRun) -> dict[str, float]:
    """Each live user's first request in the sandbox's log (found so far)."""
    run.first_call = {}
    for entry in _log(target):
        text = entry["text"]
        if "live-" not in text:
            continue
        for user in run.accepted:
            if user not in run.first_call and user in text:
                run.first_call[user] = float(entry["at"])
    return run.first_call


def share_while_waiting(target: SandboxTarget, run: LiveRun) -> None:
    """Count the requests answered while at least one live event had no request yet."""
    windows = sorted((run.accepted[u], run.first_call[u]) for u in run.accepted)
    for entry in _log(target):
        at = float(entry["at"])
        if any(start <= at <= end for start, end in windows):
            if "live-" in entry["text"]:
                run.live_calls += 1
            else:
                run.backfill_calls += 1


# --- the table --------------------------------------------------------------------------------


def print_table(
    read: dict[str, Any] | None, live: LiveRun | None, alone: LiveRun | None = None
) -> None:
    """One markdown table: measure, result, goal."""
    print("\n| part | measure | result | goal |\n|---|---|---|---|")
    if read is not None:
        rate = read["read"] / read["seconds"]
        rss = read["rss"]
        print(f"| read | events read and queued ({read['file_mb']:.0f} MiB NDJSON.gz, "
              f"core {read['core']}) | {read['read']:,} in {read['seconds']:.1f} s, "
              f"{read['queued']:,} queued, {read['drained']:,} drained | |")  # fmt: skip
        print(f"| read | events/s on one core | {rate:,.0f} | >= {READ_GOAL:,} |")
        print(f"| read | RSS MiB at start / 10 % / 50 % / 100 % of the file | {rss['start']:.0f}"
              f" / {rss.get('10%', 0):.0f} / {rss.get('50%', 0):.0f} / {rss['100%']:.0f} "
              "| flat |")  # fmt: skip
    if alone is not None:
        waits = [alone.first_call[u] - alone.accepted[u] for u in alone.accepted]
        print(f"| live alone | {len(waits)} live events without a backfill (control), p50 / p99 "
              f"/ max s | {pct(waits, 0.5) / 1000:.2f} / {pct(waits, 0.99) / 1000:.2f} / "
              f"{max(waits):.2f} | |")  # fmt: skip
    if live is not None and not live.accepted:
        print(f"| backfill alone | accepted requests/s over 40 while calls were made (backfill of "
              f"{live.backfill_events:,} events, no live events) | {live.busy_share:.0%} "
              "| the ceiling busy |")  # fmt: skip
    elif live is not None:
        waits = [live.first_call[u] - live.accepted[u] for u in live.accepted]
        calls = live.live_calls + live.backfill_calls
        share = live.backfill_calls / calls if calls else 0.0
        print(
            f"| live | live Identify events (backfill of {live.backfill_events:,} events, "
            f"{live.backfill_left:,} still undelivered at the end) | {len(waits)} | |"
        )
        print(f"| live | ingest 200 -> first ChartMogul request, p50 / p99 / max s "
              f"| {pct(waits, 0.5) / 1000:.2f} / {pct(waits, 0.99) / 1000:.2f} / "
              f"{max(waits):.2f} | <= {LIVE_P50_GOAL} / <= {LIVE_P99_GOAL} |")  # fmt: skip
        print(f"| live | backfill share of requests while live events wait | {share:.0%} "
              f"({live.backfill_calls} of {calls}) | - (live traffic takes what it needs; "
              "backfill deliveries start within BACKFILL_RATE_SHARE) |")  # fmt: skip
        print(
            f"| live | accepted requests/s over 40 while calls were made | "
            f"{live.busy_share:.0%} | the ceiling busy |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="event counts x this")
    parser.add_argument("--parts", default="read,live", help="read, live or both")
    parser.add_argument("--live-rate", type=float, default=2.0, help="live events per second")
    parser.add_argument("--control", action="store_true",
                        help="also the live events alone, without a backfill")  # fmt: skip
    parser.add_argument("--cache", type=Path,
                        default=Path(tempfile.gettempdir()) / "cmrelay-bench-backfill",
                        help="where the generated history file is kept")  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.redis, args.prefix, args.core)
    parts = {p.strip() for p in args.parts.split(",")}
    print(f"machine: {machine()}", flush=True)
    read = read_and_queue(args.cache, max(1000, int(READ_EVENTS * args.scale))) if (
        "read" in parts) else None  # fmt: skip
    if read is not None:
        print(f"read: {read}", flush=True)
    live = alone = None
    if "live" in parts and args.control:
        with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
            alone = live_latency(Path(tmp), args.scale, args.live_rate, backfill=False)
    if "live" in parts:
        with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
            live = live_latency(Path(tmp), args.scale, args.live_rate)
    print_table(read, live, alone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
