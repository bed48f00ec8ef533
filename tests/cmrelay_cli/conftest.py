"""The CLI's read-only views run against the session's real Redis under the test's prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmrelay.settings import Settings, load_settings
from sandbox.runner import SandboxServer
from tests.support.sandbox_relay import API_KEY, DATA_SOURCE
from worker.pipeline.engine import Engine


@pytest.fixture
def relay_env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment `load_settings()` reads: this test's Redis and prefix, no settings file."""
    (tmp_path / "relay.toml").write_text("")
    monkeypatch.setenv("CMRELAY_CONFIG", str(tmp_path / "relay.toml"))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("CMRELAY_KEY_PREFIX", settings.key_prefix)


@pytest.fixture
def api_engine(
    relay_env: None, sandbox: SandboxServer, state: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """An engine as `cmrelay` builds it from the environment, delivering to the (emptied)
    sandbox through the built-in REST API deliverer."""
    env = {"CHARTMOGUL_API_KEY": API_KEY, "CHARTMOGUL_API_BASE": sandbox.base_url,
           "CHARTMOGUL_DATA_SOURCE_UUID": DATA_SOURCE, "COALESCE_WINDOW": "0",
           "CMRELAY_DELIVERER": ""}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    engine = Engine.from_settings(load_settings())
    yield engine
    engine.deliverer.close()
