from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from cmrelay_cli.main import parse
from tests.support.processes import FAST_ENGINE_ENV, ROOT, wait_for
from worker.celery_app import worker_argv


def test_bad_setting_fails_with_one_line_and_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cmrelay_cli", "ingest"],
        env={"INGEST_PORT": "eighty", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "cmrelay: configuration error: INGEST_PORT: not a TCP port: 'eighty'"
    ]


def test_ingest_without_write_keys_refuses_to_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cmrelay_cli", "ingest"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SEGMENT_WRITE_KEYS" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_hands_celery_options_to_celery_unparsed() -> None:
    # argparse's REMAINDER would reject `--concurrency 2 -E` as unknown options of ours.
    args = parse(["worker", "--concurrency", "2", "-E", "-n", "w1@%h"])
    assert args.command == "worker"
    assert args.celery_args == ["--concurrency", "2", "-E", "-n", "w1@%h"]
    # What Celery then gets: the operator's concurrency, not our default added after it.
    argv = worker_argv(args.celery_args)
    assert argv[:6] == ["worker", "--concurrency", "2", "-E", "-n", "w1@%h"]
    assert argv.count("--concurrency") == 1


def test_cmrelay_worker_runs_celery_with_the_options_given(redis_url: str, tmp_path: Path) -> None:
    """A real `cmrelay worker --concurrency 2 -E`: Celery starts and reports 2 pool slots."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, **FAST_ENGINE_ENV, "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url, "CMRELAY_KEY_PREFIX": prefix,
        "CHARTMOGUL_WEBHOOK_URL": "http://127.0.0.1:9/never-called",
    }  # fmt: skip
    name = f"{prefix}@cli"
    log = (tmp_path / "worker.log").open("wb")
    cmd = [sys.executable, "-m", "cmrelay_cli", "worker", "--concurrency", "2", "-E", "-n", name]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def stats() -> dict[str, Any] | None:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
            inspect = subprocess.run(
                [sys.executable, "-m", "celery", "-A", "worker.celery_app", "inspect", "stats",
                 "-d", name, "--json", "--timeout", "1"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            if inspect.returncode != 0:
                return None
            found: dict[str, Any] = json.loads(inspect.stdout)[name]
            return found

        found = wait_for(stats, 60, "the worker to answer `inspect stats`", every=0.5)
        assert found["pool"]["max-concurrency"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
