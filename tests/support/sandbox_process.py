"""The sandbox as its own process (`cmrelay sandbox`), the way ChartMogul is its own machine.

The in-process `SandboxServer` shares the GIL with whatever drives the test; under load its
event loop then stamps arrivals late and in bunches, which ChartMogul's edge would not. The
benchmarks that count 429s run the sandbox here instead.
"""

from __future__ import annotations

import subprocess
import sys

import httpx

from cmrelay.redis_server import free_port
from tests.support.processes import ROOT, wait_for


class SandboxProcess:
    """`base_url`, `control_url` and `stop()` like SandboxServer; ChartMogul's limits on."""

    def __init__(self, *, api_key: str, data_source: str, latency: float = 0.0) -> None:
        self.port = free_port()
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root_url}/v1"
        self.control_url = f"{self.root_url}/_sandbox"
        command = [
            sys.executable, "-m", "cmrelay_cli", "sandbox", "--port", str(self.port),
            "--api-key", api_key, "--data-source", data_source, "--latency", str(latency),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self._answers, 30, "the sandbox process")

    def _answers(self) -> bool:
        if self._proc.poll() is not None:
            raise RuntimeError(f"the sandbox process exited with {self._proc.returncode}")
        try:
            return httpx.get(f"{self.control_url}/stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s)."""
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
