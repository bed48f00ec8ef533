"""The whole relay as separate processes for fault runs and benchmarks: a private Redis (AOF on),
the real ingest under uvicorn, real Celery workers, and a delivery target (sandbox or recorder).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from cmrelay.dlq.entry import DlqEntry
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.keys import Keys
from cmrelay.redis_server import PrivateRedis, free_port
from tests.support.processes import ROOT, WorkerProcesses, wait_for

from .stream import Event
from .targets import RecorderTarget, SandboxTarget, Target, real_deliverer_available

WRITE_KEY = "faults-write-key"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

# Fast but realistic engine settings: short windows so a scenario takes seconds, a backoff cap
# of 2 s so a 6 s outage is "longer than the cap", a retry window long enough to dead-letter
# nothing that a recovering API could still take.
FAULT_ENGINE_ENV = {
    "COALESCE_WINDOW": "0.3",
    "RETRY_BACKOFF_BASE": "0.2",
    "RETRY_BACKOFF_MAX": "2",
    "RETRY_WINDOW": "600",
    "VISIBILITY_TIMEOUT": "10",
    "PAUSE_PROBE_INTERVAL": "0.5",
    "SCHEDULER_INTERVAL": "0.02",
    "CHARTMOGUL_RATE_LIMIT": "39",
    "CHARTMOGUL_MAX_IN_FLIGHT": "18",
    "CHARTMOGUL_TIMEOUT": "5",
    "LOG_LEVEL": "info",
}


def make_target(latency: float = 0.0, kind: str | None = None) -> Target:
    """The sandbox once the real API deliverer is wired, else the recorder (FAULTS_TARGET wins)."""
    kind = (
        kind
        or os.environ.get("FAULTS_TARGET")
        or ("sandbox" if real_deliverer_available() else "recorder")
    )
    return SandboxTarget(latency) if kind == "sandbox" else RecorderTarget(latency)


class IngestProcess:
    """`cmrelay ingest` in a child process on a fixed port, so it can be killed and restarted."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("ab")
        args = [sys.executable, "-m", "cmrelay_cli", "ingest", "--port", str(self.port)]
        self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out, stderr=out)
        wait_for(self._healthy, 30, "the ingest to answer /health", every=0.05)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class SendResult:
    """What the client saw: requests, retries by cause, events acknowledged."""

    requests: int = 0
    batches: int = 0
    acknowledged: int = 0
    answers: dict[str, int] = field(default_factory=dict)

    @property
    def retries(self) -> int:
        return self.requests - self.batches

    def count(self, what: str) -> None:
        self.answers[what] = self.answers.get(what, 0) + 1


class Pipeline:
    """Redis + ingest + workers + target; `send` a stream, `settle`, then `counts`."""

    def __init__(
        self, tmp: Path, target: Target, *, workers: int = 2, concurrency: int = 4,
        **env: str,
    ) -> None:  # fmt: skip
        self.tmp = tmp
        self.target = target
        self.redis = PrivateRedis(appendonly=True).start()
        self.keys = Keys(f"f{uuid.uuid4().hex[:6]}")
        config = tmp / "relay.toml"
        config.write_text("")
        self.env = {
            **os.environ, **FAULT_ENGINE_ENV, **target.worker_env(),
            "REDIS_URL": self.redis.url, "CMRELAY_KEY_PREFIX": self.keys.prefix,
            "SEGMENT_WRITE_KEYS": WRITE_KEY, "CMRELAY_CONFIG": str(config), **env,
        }  # fmt: skip
        self.client = redis.Redis.from_url(self.redis.url)
        self.ingest = IngestProcess(self.env, tmp / "ingest.log")
        self.ingest.start()
        self.workers = WorkerProcesses(self.env, tmp)
        self.workers.start(workers, concurrency)
        self.sending = SendResult()  # what the background sender has seen so far

    def close(self) -> None:
        self.workers.stop()
        self.ingest.stop()
        self.client.close()
        self.redis.cleanup()
        self.target.stop()

    # --- sending ------------------------------------------------------------------------
    def send(
        self, events: Sequence[Event], *, batch: int = 50, deadline: float = 120,
        pace: float = 0.0, result: SendResult | None = None,
    ) -> SendResult:  # fmt: skip
        """POST /v1/batch like a Segment library: retry a batch until it is acknowledged."""
        result = result if result is not None else SendResult()
        stop_at = time.monotonic() + deadline
        with httpx.Client(timeout=10, headers={"Authorization": AUTH}) as http:
            for start in range(0, len(events), batch):
                body = orjson.dumps({"batch": list(events[start : start + batch])})
                result.batches += 1
                self._post(http, body, result, stop_at)
                result.acknowledged += min(batch, len(events) - start)
                if pace:
                    time.sleep(pace)  # a steady client, not synchronisation
        return result

    def _post(self, http: httpx.Client, body: bytes, result: SendResult, stop_at: float) -> None:
        delay = 0.05
        while True:
            result.requests += 1
            try:
                response = http.post(
                    f"{self.ingest.url}/v1/batch", content=body,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                result.count(str(response.status_code))
                if response.status_code == 200:
                    rejected = response.json().get("rejected")
                    assert not rejected, f"the ingest rejected known-good events: {rejected}"
                    return
                if response.status_code < 500 and response.status_code != 429:
                    raise AssertionError(f"ingest refused a good batch: {response.text[:300]}")
            except httpx.TransportError as exc:
                result.count(type(exc).__name__)
            if time.monotonic() > stop_at:
                raise AssertionError(f"a batch was never acknowledged: {result.answers}")
            time.sleep(delay)  # client backoff, as analytics-python does; not synchronisation
            delay = min(1.0, delay * 2)

    # --- observing ------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.counters)  # type: ignore[assignment]
        return {k.decode(): int(v) for k, v in raw.items()}

    def idle(self) -> bool:
        """Nothing queued, being accepted, pending or leased."""
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(self.keys.ingest_queue)
        pipe.zcard(self.keys.accepting_index)
        pipe.zcard(self.keys.due)
        return not any(pipe.execute())

    def settle(self, timeout: float, unique: int) -> float:
        """Wait until every accepted event is delivered or dead-lettered and nothing is pending."""
        started = time.monotonic()

        def done() -> bool:
            c = self.counters()
            return (
                self.idle()
                and c.get("delivered", 0) + c.get("unchanged", 0) + c.get("dead_lettered", 0)
                >= unique
            )

        try:
            wait_for(done, timeout, "the relay to settle", every=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.describe()}\n{self.logs()}") from None
        return time.monotonic() - started

    def describe(self) -> str:
        """Queue depths, counters and a few pending entities with their retry state."""
        due: list[Any] = self.client.zrange(self.keys.due, 0, 4, withscores=True)
        retry = {e.decode(): self.client.hgetall(self.keys.retry_state(e.decode())) for e, _ in due}
        return (
            f"ingest={self.client.llen(self.keys.ingest_queue)} "
            f"accepting={self.client.zcard(self.keys.accepting_index)} "
            f"due={self.client.zcard(self.keys.due)} first due={due} retry={retry} "
            f"now={self.client.time()} counters={self.counters()}"
        )

    def leases(self) -> int:
        """Deliveries in progress right now (entity leases held)."""
        return len(self.client.keys(f"{self.keys.prefix}:lease:*"))

    def worker_ready(self, index: int) -> bool:
        """Celery logged "ready." for worker `index` (consuming); logs go to stderr as JSON."""
        logs = (self.tmp / f"worker{index}{suffix}.log" for suffix in ("", ".err"))
        return any(log.exists() and b" ready." in log.read_bytes() for log in logs)

    def dead_letters(self) -> int:
        return int(self.client.zcard(self.keys.dlq_index))

    def dead_letter_entries(self) -> list[DlqEntry]:
        dlq = DeadLetterQueue(self.client, self.keys, 86_400)
        return dlq.list(DlqFilter())

    def logs(self) -> str:
        return self.workers.logs()[-4000:]

    def worker_tracebacks(self) -> int:
        return sum(
            p.read_text(errors="replace").count("Traceback") for p in self.tmp.glob("w*.log")
        )


@contextmanager
def pipeline(tmp: Path, target: Target | None = None, **kwargs: Any) -> Iterator[Pipeline]:
    """A Pipeline that is always torn down."""
    target = target or make_target()
    try:
        pipe = Pipeline(tmp, target, **kwargs)
    except BaseException:
        target.stop()
        raise
    try:
        yield pipe
    finally:
        pipe.close()
