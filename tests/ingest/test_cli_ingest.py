"""`cmrelay ingest` as users start it: a subprocess configured by the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cmrelay.redis_server import free_port


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cmrelay_cli", "ingest"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_healthy(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            return httpx.get(f"{url}/health", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("cmrelay ingest never answered /health")


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    return process.returncode, stderr


@pytest.mark.parametrize("embedded", [False, True])
def test_cmrelay_ingest_serves_health_and_accepts_events(
    redis_url: str, tmp_path: Path, embedded: bool
) -> None:
    port = free_port()
    env = {
        "REDIS_URL": redis_url,
        "INGEST_PORT": str(port),
        "CMRELAY_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("")
    if embedded:
        env["CMRELAY_EMBEDDED"] = "1"  # no keys: auth off, and it must say so loudly
    else:
        env["SEGMENT_WRITE_KEYS"] = "cli-key"
    process = _start(env)
    try:
        url = f"http://127.0.0.1:{port}"
        assert _wait_healthy(url, process).json() == {"status": "ok"}
        answer = httpx.post(f"{url}/v1/identify", json={"userId": "u"}, auth=("any", ""))
        assert answer.status_code == (200 if embedded else 401)
        answer = httpx.post(f"{url}/v1/identify", json={"userId": "u", "writeKey": "cli-key"})
        assert answer.status_code == 200
    finally:
        code, stderr = _stop(process)
    assert code == 130  # Ctrl-C: uvicorn shuts down cleanly, then the CLI exits as shells expect
    assert "Traceback" not in stderr
    assert ("AUTHENTICATION IS OFF" in stderr) is embedded
    assert "cli-key" not in stderr
