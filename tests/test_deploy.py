"""docker-compose.yml has what the no-loss promise and the operators rely on (docker itself
cannot run here, so the file is checked as data)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from cmrelay_cli.main import build_parser

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, Any] = data["services"]
    return found


def _flags(command: list[str]) -> dict[str, str]:
    """`--name value` pairs of a command line."""
    return {a.lstrip("-"): b for a, b in itertools.pairwise(command) if a[:2] == "--"}


def test_redis_keeps_every_write_aof_every_second_and_never_evicts(
    services: dict[str, Any],
) -> None:
    flags = _flags(services["redis"]["command"])
    assert flags["appendonly"] == "yes"
    assert flags["appendfsync"] == "everysec"
    assert flags["maxmemory-policy"] == "noeviction"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])  # survives restarts


def test_every_service_has_a_health_check(services: dict[str, Any]) -> None:
    assert set(services) >= {"redis", "ingest", "worker", "sandbox", "flower"}
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"


def test_the_worker_scales_with_no_fixed_name_or_port(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["cmrelay", "worker"]
    # Its health check is a real subcommand, and the stop grace outlasts the soft shutdown.
    probe = worker["healthcheck"]["test"][1:]
    assert probe[0] == "cmrelay" and build_parser().parse_args(probe[1:]).command == probe[1]
    assert int(worker["stop_grace_period"].rstrip("s")) > 10


def test_sandbox_and_flower_are_optional_profiles(services: dict[str, Any]) -> None:
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert services["flower"]["profiles"] == ["flower"]
    for name in ("redis", "ingest", "worker"):
        assert "profiles" not in services[name]


def test_relay_services_wait_for_a_healthy_redis(services: dict[str, Any]) -> None:
    for name in ("ingest", "worker"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["ingest"]["healthcheck"]["test"][-1].count("/ready") == 1


def test_the_image_copies_every_package_pyproject_installs() -> None:
    import tomllib

    root = COMPOSE.parent
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    packages = set(pyproject["tool"]["mypy"]["packages"])
    copied = {
        line.split()[1]
        for line in (root / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and len(line.split()) == 3
    }
    assert packages <= copied, f"Dockerfile does not copy {sorted(packages - copied)}"
