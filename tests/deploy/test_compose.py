"""docker-compose.yml has what the no-loss promise and the operators rely on, and each profile
works alone. The file is read by the real `docker-compose config` (no engine runs here)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml

from cmrelay.settings import _FIELDS
from cmrelay_cli.main import build_parser
from tests.deploy.compose import SANDBOX_ENV, compose_config, run_compose
from tests.deploy.image import ROOT

PROFILES = ["admin", "sandbox", "flower"]
CORE = {"redis", "ingest", "worker"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """Every service as written (all profiles), before interpolation."""
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found: dict[str, Any] = data["services"]
    return found


def _flags(command: list[str]) -> dict[str, str]:
    """`--name value` pairs of a command line."""
    return {a.lstrip("-"): b for a, b in itertools.pairwise(command) if a[:2] == "--"}


def _env_file(path: Any) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_redis_keeps_every_write_aof_every_second_and_never_evicts(
    services: dict[str, Any],
) -> None:
    flags = _flags(services["redis"]["command"])
    assert flags["appendonly"] == "yes"
    assert flags["appendfsync"] == "everysec"
    assert flags["maxmemory-policy"] == "noeviction"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])  # survives restarts


def test_every_service_has_a_health_check(services: dict[str, Any]) -> None:
    assert set(services) >= CORE | {"admin", "sandbox", "flower"}
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


def test_optional_parts_are_profiles_and_the_core_is_not(services: dict[str, Any]) -> None:
    for name in PROFILES:
        assert services[name]["profiles"] == [name]
    for name in CORE:
        assert "profiles" not in services[name]


def test_relay_services_wait_for_a_healthy_redis(services: dict[str, Any]) -> None:
    for name in ("ingest", "worker", "admin"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["ingest"]["healthcheck"]["test"][-1].count("/ready") == 1


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_each_profile_resolves_alone_with_no_variable_set(profile: str | None) -> None:
    """`docker compose [--profile P] config` needs nothing set and warns about nothing: each
    command refuses to start by itself when a setting it needs is missing."""
    args = ["--profile", profile] if profile else []
    project = compose_config(*args)
    assert set(project["services"]) == CORE | ({profile} if profile else set())


def test_admin_token_goes_to_the_admin_only() -> None:
    project = compose_config("--profile", "admin", env={"ADMIN_TOKEN": "t0ken"})
    assert project["services"]["admin"]["environment"]["ADMIN_TOKEN"] == "t0ken"
    for name in ("ingest", "worker"):
        assert "ADMIN_TOKEN" not in project["services"][name]["environment"]
    # Without a token the file still resolves (the admin command itself refuses: test_image).
    unset = compose_config("--profile", "admin")
    assert unset["services"]["admin"]["environment"]["ADMIN_TOKEN"] == ""


def test_relay_services_set_only_settings_the_relay_knows() -> None:
    """A misspelt variable would be ignored silently by the relay."""
    project = compose_config(*itertools.chain(*(("--profile", p) for p in PROFILES)))
    for name, service in project["services"].items():
        if service.get("command", [""])[0] == "cmrelay":
            unknown = set(service.get("environment", {})) - set(_FIELDS)
            assert not unknown, f"{name}: {sorted(unknown)}"
    assert set(_env_file(SANDBOX_ENV)) - {"COMPOSE_PROFILES"} <= set(_FIELDS)


def test_production_values_reach_the_relay() -> None:
    env = {
        "SEGMENT_WRITE_KEYS": "wk1,wk2",
        "CHARTMOGUL_API_KEY": "cm-key",
        "CHARTMOGUL_DATA_SOURCE_UUID": "ds_11111111-2222-4333-8444-555555555555",
    }
    project = compose_config(env=env)
    assert "sandbox" not in project["services"]
    for name in ("ingest", "worker"):
        environment = project["services"][name]["environment"]
        assert {k: environment[k] for k in env} == env
        assert environment["CHARTMOGUL_API_BASE"] == "https://api.chartmogul.com/v1"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"


@pytest.mark.parametrize(
    "args",
    [["--env-file", str(SANDBOX_ENV)], ["--env-file", str(SANDBOX_ENV), "--profile", "sandbox"]],
    ids=["env-file", "env-file+profile"],
)
def test_the_sandbox_profile_points_the_worker_at_the_sandbox(args: list[str]) -> None:
    """The worker gets the sandbox's address, the key it accepts and the data source it
    creates at start, and waits for it to be healthy."""
    services = compose_config(*args)["services"]
    assert set(services) == CORE | {"sandbox"}
    sandbox = _flags(services["sandbox"]["command"])
    worker = services["worker"]
    assert worker["environment"]["CHARTMOGUL_API_BASE"] == f"http://sandbox:{sandbox['port']}/v1"
    assert worker["environment"]["CHARTMOGUL_API_KEY"] == sandbox["api-key"]
    assert worker["environment"]["CHARTMOGUL_DATA_SOURCE_UUID"] == sandbox["data-source"]
    assert worker["environment"]["DELIVERY_MODE"] == "api"
    assert worker["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert sandbox["api-key"] in services["sandbox"]["healthcheck"]["test"][-1]
    assert services["ingest"]["environment"]["SEGMENT_WRITE_KEYS"]


def test_the_sandbox_dependency_is_optional_without_the_profile() -> None:
    services = compose_config()["services"]
    assert services["worker"]["depends_on"]["sandbox"]["required"] is False
    # `up` would refuse a required dependency on a service whose profile is off.
    assert run_compose("config", "--quiet").returncode == 0
