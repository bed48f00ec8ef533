"""`cmrelay run` as a user starts it: every part as a child process, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from cmrelay.redis_server import free_port
from tests.support.processes import ROOT, wait_for

SANDBOX_LINE = re.compile(r"ChartMogul sandbox at (http://127\.0\.0\.1:\d+)/v1")


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_delivers_an_unauthenticated_identify_to_its_sandbox_and_stops_on_sigint(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ, "REDIS_URL": redis_url, "INGEST_PORT": str(port),
        "CMRELAY_KEY_PREFIX": f"run{uuid.uuid4().hex[:6]}", "COALESCE_WINDOW": "0.1",
        "CMRELAY_CONFIG": str(tmp_path / "none.toml"), "SEGMENT_WRITE_KEYS": "",
    }  # fmt: skip
    (tmp_path / "none.toml").write_text("")
    for name in ("CHARTMOGUL_API_KEY", "CHARTMOGUL_WEBHOOK_URL", "CMRELAY_DELIVERER"):
        env.pop(name, None)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cmrelay_cli", "run"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        sandbox = wait_for(
            lambda: (m := SANDBOX_LINE.search(log.read_text())) and m.group(1), 60, "the sandbox"
        )
        wait_for(lambda: "relay ready" in log.read_text(), 60, "the relay to be ready")
        children = _children(proc.pid)
        assert len(children) == 3  # sandbox, worker, ingest (Redis was given)
        identify = {"userId": "run-u1", "traits": {"email": "run@x.test", "firstName": "Runa"}}
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/identify", json=identify, timeout=10)
        assert answer.status_code == 200 and answer.json()["queued"] == 1

        def contact() -> list[dict[str, object]]:
            state = httpx.get(f"{sandbox}/_sandbox/state", timeout=5).json()
            return [c for c in state["contacts"] if c["external_id"] == "run-u1"]

        [found] = wait_for(contact, 60, f"the contact in the sandbox\n{log.read_text()[-3000:]}")
        assert (found["email"], found["first_name"]) == ("run@x.test", "Runa")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    left = [pid for pid in children if _alive(pid)]
    for pid in left:  # never leave strays behind, even when the assertion below fails
        os.kill(pid, signal.SIGKILL)
    assert code == 0
    assert not left
