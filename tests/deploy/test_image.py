"""The Docker image holds every command docker-compose.yml runs, and the sandbox profile delivers
end to end. No Docker engine runs here, so the image is rebuilt the way its Dockerfile builds
it: exactly what its COPY lines copy (after .dockerignore) is staged in a temporary /app and
installed with its own `pip install` line into a fresh virtualenv, dependencies and all (about
15 s), then each compose service's command and health check runs from that install, with the
environment `docker-compose config` resolves for it, against a real Redis.

Containers are emulated, not run: the services share this host, so compose's service names and
container ports are rewritten to loopback and free ports (`Network`). The image's Python is a
Python of the Dockerfile's base version on this machine that any user can run; commands run as
the image's numeric USER, which can read the image and write nowhere but /tmp (as under
Kubernetes' readOnlyRootFilesystem with /tmp on an emptyDir). EXPOSE is not exercised.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cmrelay.redis_server import free_port
from tests.deploy.compose import SANDBOX_ENV, compose_config
from tests.deploy.image import ROOT, InstalledImage, install, read_dockerfile, read_dockerignore
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

IDENTIFY = {
    "userId": "u-compose-1",
    "messageId": "m-compose-1",
    "traits": {"email": "ann@example.com", "name": "Ann Lee", "plan": "pro"},
}


@pytest.fixture(scope="module")
def image() -> Iterator[InstalledImage]:
    """The image, staged and installed once for the module (in a folder its USER can read:
    pytest's own temporary folders are private to root)."""
    tmp = Path(tempfile.mkdtemp(prefix="cmrelay-image-"))
    tmp.chmod(0o755)
    try:
        yield install(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _seconds(duration: str | None) -> float:
    """A compose duration as `config --format json` prints it (`1m0s`, `30s`); default 10 s."""
    if not duration:
        return 10.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", duration)
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[unit] for n, unit in parts)


@dataclass
class Network:
    """Compose's network on one host: `service:port` and 127.0.0.1:port inside a service
    become loopback free ports; the Redis service becomes the test's Redis."""

    redis_url: str
    project: dict[str, Any]
    ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, service in self.project["services"].items():
            for port in service.get("ports", []):
                self.ports[(name, int(port["target"]))] = free_port()

    def localize(self, service: str, value: str) -> str:
        """`value` as seen from `service` when every service runs on this host."""
        value = value.replace("redis://redis:6379/0", self.redis_url)
        value = value.replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - binds loopback instead
        for (name, target), local in self.ports.items():
            value = value.replace(f"{name}:{target}", f"127.0.0.1:{local}")
            if name == service:
                value = value.replace(f"127.0.0.1:{target}", f"127.0.0.1:{local}")
                value = re.sub(rf"^{target}$", str(local), value)
        return value

    def published(self, service: str, target: int) -> str:
        """The address a client on the host uses for `service`'s container port."""
        return f"http://127.0.0.1:{self.ports[(service, target)]}"


@dataclass
class Services:
    """The project's services started from the installed image, one process each."""

    image: InstalledImage
    network: Network
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _service(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.network.project["services"][name]
        assert found.get("build"), f"{name} is not built from the image"
        return found

    def env(self, name: str) -> dict[str, str]:
        environment = self._service(name).get("environment") or {}
        local = {k: self.network.localize(name, v or "") for k, v in environment.items()}
        return self.image.env(local)

    def argv(self, name: str, argv: list[str]) -> list[str]:
        return self.image.as_user([self.network.localize(name, a) for a in argv])

    def run(self, name: str, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a one-off command in `name`'s container (a health check, `docker compose run`)."""
        return subprocess.run(
            self.argv(name, argv), cwd=self.image.workdir, env=self.env(name),
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.running[name] = subprocess.Popen(
            self.argv(name, self._service(name)["command"]), cwd=self.image.workdir,
            env=self.env(name), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def healthy(self, name: str) -> bool:
        """One run of the service's health check, as Docker runs it (`CMD` form)."""
        check = self._service(name)["healthcheck"]
        assert check["test"][0] == "CMD"
        proc = self.running.get(name)
        assert proc is None or proc.poll() is None, f"{name} exited:\n{self.log(name)}"
        return self.run(name, check["test"][1:], _seconds(check.get("timeout"))).returncode == 0

    def wait_healthy(self, name: str, timeout: float = 60) -> None:
        wait_for(lambda: self.healthy(name), timeout, f"{name} to pass its health check", 0.3)

    def stop(self, name: str) -> int:
        """SIGTERM, then the service's stop_grace_period before a kill (as `docker stop`)."""
        proc = self.running.pop(name)
        proc.send_signal(signal.SIGTERM)
        grace = _seconds(self._service(name).get("stop_grace_period"))
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def services_for(
    image: InstalledImage, redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> Iterator[Any]:
    """`services_for(project)`: the project's services on this host; all stopped at the end."""
    started: list[Services] = []

    def make(project: dict[str, Any]) -> Services:
        started.append(Services(image, Network(redis_url, project), tmp_path))
        return started[-1]

    yield make
    for services in started:
        for name in list(services.running):
            services.stop(name)


def test_the_image_holds_exactly_what_the_dockerfile_copies(image: InstalledImage) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = set(pyproject["tool"]["mypy"]["packages"])
    workdir = image.workdir.relative_to(image.root).as_posix()
    assert {p.split("/")[1] for p in image.staged if p.startswith(f"{workdir}/")} == packages | {
        "pyproject.toml", "README.md", "config",
    }  # fmt: skip
    assert all(p.startswith(f"{workdir}/") for p in image.staged)
    # .dockerignore kept caches out of the copied folders.
    assert not [p for p in image.staged if p.endswith(".pyc") or "_cache/" in p]
    # The installed code is the image's own copy, every package of it, not this checkout.
    where = subprocess.run(
        image.as_user(
            ["python", "-c", f"import {', '.join(sorted(packages))}; print(cmrelay_cli.__file__)"]
        ),
        cwd=image.root, env=image.env({}), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(image.venv)), where.stdout
    if image.switch_user:  # the commands below run as the image's user, unable to write in it
        probe = subprocess.run(
            image.as_user(["python", "-c", "import os; print(os.getuid()); open('x', 'w')"]),
            cwd=image.workdir, env=image.env({}), capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert probe.stdout.split() == [image.dockerfile.user]
        assert "Permission denied" in probe.stderr


def test_the_build_context_leaves_out_local_state() -> None:
    ignore = read_dockerignore()
    for path in [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "cmrelay/__pycache__/x.pyc",
                 ".mypy_cache/x", ".pytest_cache/x", ".ruff_cache/x", "chartmogul_relay.egg-info/x",
                 ".env", "bench/ingest.py", "config/relay.toml"]:  # fmt: skip
        assert ignore.excluded(path), path
    for path in ["cmrelay/settings.py", "pyproject.toml", "README.md", "config/relay.example.toml"]:
        assert not ignore.excluded(path), path


def test_every_command_the_compose_file_runs_is_in_the_image(image: InstalledImage) -> None:
    """Every command and health check of every service built from the image, in any profile,
    plus the image's own CMD, parses and answers --help in the installed image."""
    project = compose_config("--profile", "admin", "--profile", "sandbox", "--profile", "flower")
    commands = [read_dockerfile().cmd]
    for service in project["services"].values():
        if service.get("build"):
            commands += [service["command"], service["healthcheck"]["test"][1:]]
    subcommands = {c[1] for c in commands if c[0] == "cmrelay"}
    assert subcommands == {"ingest", "worker", "worker-health", "admin", "sandbox"}
    assert {c[0] for c in commands} == {"cmrelay", "python"}
    # `cmrelay worker --help` checks the delivery settings before Celery prints its help.
    settings = _env_file(SANDBOX_ENV)
    for sub in sorted(subcommands):
        result = subprocess.run(
            image.as_user(["cmrelay", sub, "--help"]), cwd=image.workdir, env=image.env(settings),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"cmrelay {sub}: {result.stderr[-2000:]}"


def test_the_sandbox_profile_delivers_into_the_sandbox(services_for: Any) -> None:
    """`docker compose --env-file deploy/compose/sandbox.env up`: an identify sent to the ingest
    with the env file's write key becomes a customer in the sandbox's data source."""
    project = compose_config("--env-file", str(SANDBOX_ENV))
    services = services_for(project)
    for name in ("sandbox", "ingest", "worker"):  # compose's depends_on order
        services.start(name)
        services.wait_healthy(name)
    env = services.network.project["services"]["worker"]["environment"]
    ingest = services.network.published("ingest", 8080)
    answer = httpx.post(
        f"{ingest}/v1/identify", json=IDENTIFY, auth=(env["SEGMENT_WRITE_KEYS"], ""), timeout=10
    )
    assert answer.status_code == 200, answer.text
    sandbox = services.network.published("sandbox", 8090)

    def delivered() -> list[dict[str, Any]]:
        page = httpx.get(
            f"{sandbox}/v1/customers",
            params={"data_source_uuid": env["CHARTMOGUL_DATA_SOURCE_UUID"]},
            auth=(env["CHARTMOGUL_API_KEY"], ""), timeout=5,
        )  # fmt: skip
        page.raise_for_status()
        entries: list[dict[str, Any]] = page.json()["entries"]
        return [c for c in entries if c["email"] == "ann@example.com"]

    try:
        customers = wait_for(delivered, 60, "the customer in the sandbox", every=0.3)
    except AssertionError:
        raise AssertionError("\n".join(services.log(n) for n in services.running)) from None
    assert customers[0]["name"] == "Ann Lee"
    # `docker compose stop`: each stops within its stop_grace_period; the relay's parts exit 0
    # (docs/operations.md), the sandbox's uvicorn re-raises the SIGTERM once it has shut down.
    for name, codes in (("ingest", {0}), ("worker", {0}), ("sandbox", {0, -signal.SIGTERM})):
        assert services.stop(name) in codes, services.log(name)


def test_the_admin_profile_serves_with_a_token_and_refuses_without(services_for: Any) -> None:
    with_token = services_for(
        compose_config(
            "--profile", "admin", env={"ADMIN_TOKEN": "s3cret-admin-token-of-32-chars!!"}
        )
    )
    with_token.start("admin")
    with_token.wait_healthy("admin")
    assert with_token.stop("admin") in {0, -signal.SIGTERM}  # uvicorn re-raises the SIGTERM
    without = services_for(compose_config("--profile", "admin"))
    refused = without.run("admin", without._service("admin")["command"], timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "cmrelay: configuration error: ADMIN_TOKEN is empty: set it to start the admin API"
    ]


def test_without_credentials_each_command_refuses_in_one_line(services_for: Any) -> None:
    """Plain `docker compose up` with nothing set: the ingest and worker exit at once, each
    saying what is missing, instead of running half-configured."""
    services = services_for(compose_config())
    expected = {"ingest": "SEGMENT_WRITE_KEYS", "worker": "CHARTMOGUL_API_KEY"}
    for name, missing in expected.items():
        result = services.run(name, services._service(name)["command"], timeout=60)
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and missing in lines[0], lines
