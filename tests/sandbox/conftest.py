"""One real sandbox (uvicorn on a loopback port) for the session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import chartmogul
import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer

API_KEY = "sandbox-test-key"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """Limits start switched off so tests can go fast; limit tests switch them on."""
    config = SandboxConfig(api_key=API_KEY, rate_limit=0, max_in_flight=0, webhook_token="tok")
    with SandboxServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sandbox_server: SandboxServer) -> None:
    response = httpx.post(f"{sandbox_server.control_url}/reset", timeout=5)
    assert response.status_code == 200


@pytest.fixture
def api(sandbox_server: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client on the API base with the right key."""
    with httpx.Client(base_url=sandbox_server.base_url, auth=(API_KEY, ""), timeout=10) as client:
        yield client


@pytest.fixture
def control(sandbox_server: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client on the control API (no auth)."""
    with httpx.Client(base_url=sandbox_server.control_url, timeout=10) as client:
        yield client


@pytest.fixture
def cm(sandbox_server: SandboxServer) -> chartmogul.Config:
    """The official client's config, pointed at the sandbox."""
    config = chartmogul.Config(API_KEY)
    config.uri = sandbox_server.base_url
    return config


@pytest.fixture
def source(api: httpx.Client) -> str:
    """The uuid of a fresh data source."""
    response = api.post("/data_sources", json={"name": "Segment"})
    assert response.status_code == 200
    uuid: str = response.json()["uuid"]
    return uuid
