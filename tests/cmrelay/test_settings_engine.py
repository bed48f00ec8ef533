"""Settings the worker engine adds: parsed from the environment, refused when invalid."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmrelay.errors import ConfigurationError
from cmrelay.settings import load_settings


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    config = tmp_path / "relay.toml"
    config.write_text("")
    return {"CMRELAY_CONFIG": str(config), **values}


def test_engine_settings_have_defaults_and_read_the_environment(tmp_path: Path) -> None:
    defaults = load_settings(_env(tmp_path))
    assert (defaults.retry_backoff_base, defaults.retry_backoff_max) == (1.0, 600.0)
    assert defaults.deliverer == ""
    custom = load_settings(
        _env(tmp_path, RETRY_BACKOFF_BASE="0.5", RETRY_BACKOFF_MAX="60", SCHEDULER_INTERVAL="0.1",
             PAUSE_PROBE_INTERVAL="5", CMRELAY_DELIVERER=" pkg.mod:build "),
    )  # fmt: skip
    assert custom.retry_backoff_base == 0.5 and custom.retry_backoff_max == 60
    assert custom.scheduler_interval == 0.1 and custom.pause_probe_interval == 5
    assert custom.deliverer == "pkg.mod:build"


def test_a_non_positive_backoff_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="RETRY_BACKOFF_BASE"):
        load_settings(_env(tmp_path, RETRY_BACKOFF_BASE="0"))
