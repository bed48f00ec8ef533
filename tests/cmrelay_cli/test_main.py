from __future__ import annotations

import subprocess
import sys


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
