"""The CLI's read-only views run against the session's real Redis under the test's prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmrelay.settings import Settings


@pytest.fixture
def relay_env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment `load_settings()` reads: this test's Redis and prefix, no settings file."""
    (tmp_path / "relay.toml").write_text("")
    monkeypatch.setenv("CMRELAY_CONFIG", str(tmp_path / "relay.toml"))
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("CMRELAY_KEY_PREFIX", settings.key_prefix)
