"""SandboxServer starts on a free port and stops cleanly."""

from __future__ import annotations

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.runner import SandboxServer


def test_the_server_serves_inside_the_block_and_not_after() -> None:
    with SandboxServer(SandboxConfig(api_key="k")) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert httpx.get(f"{server.base_url}/ping", auth=("k", "")).status_code == 200
        assert httpx.get(f"{server.control_url}/stats").json()["total"] == 1
        server.sandbox.store.add_data_source("seeded in-process")
        names = httpx.get(f"{server.base_url}/data_sources", auth=("k", "")).json()
        assert [ds["name"] for ds in names["data_sources"]] == ["seeded in-process"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/ping", auth=("k", ""), timeout=2)


def test_two_servers_get_different_ports() -> None:
    with SandboxServer() as first, SandboxServer() as second:
        assert first.port != second.port
