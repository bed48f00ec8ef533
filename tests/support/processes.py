"""Real `celery -A worker.celery_app worker` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

FAST_ENGINE_ENV = {
    "CMRELAY_DELIVERER": "tests.doubles.recording_deliverer:build",
    "COALESCE_WINDOW": "0.3",
    "RETRY_BACKOFF_BASE": "0.05",
    "RETRY_BACKOFF_MAX": "0.3",
    "RETRY_WINDOW": "3",
    "VISIBILITY_TIMEOUT": "4",
    "PAUSE_PROBE_INTERVAL": "0.3",
    "SCHEDULER_INTERVAL": "0.02",
    "CHARTMOGUL_RATE_LIMIT": "50",
    "CHARTMOGUL_MAX_IN_FLIGHT": "8",
    "LOG_LEVEL": "info",
}


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def max_in_any_window(times: list[float], width: float) -> int:
    """Most sorted `times` falling in any half-open window [t, t + width)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


class WorkerProcesses:
    """Start, kill and stop worker processes sharing one environment."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1, concurrency: int = 4) -> None:
        for _ in range(count):
            n = len(self.procs)
            log = (self.log_dir / f"worker{n}.log").open("wb")
            err = (self.log_dir / f"worker{n}.err.log").open("wb")  # stderr alone: the logs
            args = [
                sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
                "--pool", "threads", "-c", str(concurrency), "-n", f"w{n}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ]  # fmt: skip
            self.procs.append(
                subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=err)
            )

    def kill(self, index: int) -> None:
        """SIGKILL: no warm shutdown, nothing handed back."""
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stderr_lines(self, index: int) -> list[str]:
        """The stderr of one worker, line by line (the structured logs)."""
        text = (self.log_dir / f"worker{index}.err.log").read_text(errors="replace")
        return [line for line in text.splitlines() if line.strip()]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))
