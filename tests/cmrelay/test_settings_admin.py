"""Settings of `cmrelay admin`: local by default, read from the environment, refused if bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmrelay.errors import ConfigurationError
from cmrelay.settings import load_settings


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    config = tmp_path / "relay.toml"
    config.write_text('admin_host = "10.0.0.5"\n' if values.pop("from_file", "") else "")
    return {"CMRELAY_CONFIG": str(config), **values}


def test_admin_listens_locally_on_8081_unless_told_otherwise(tmp_path: Path) -> None:
    defaults = load_settings(_env(tmp_path))
    assert (defaults.admin_host, defaults.admin_port, defaults.admin_token) == (
        "127.0.0.1", 8081, None,
    )  # fmt: skip
    custom = load_settings(_env(tmp_path, ADMIN_PORT="9000", ADMIN_TOKEN="t0k3n-long-enough"))
    assert custom.admin_port == 9000 and custom.admin_token is not None
    assert "t0k3n" not in repr(custom)
    assert load_settings(_env(tmp_path, from_file="1")).admin_host == "10.0.0.5"


@pytest.mark.parametrize("port", ["http", "70000", "-1"])
def test_a_bad_admin_port_is_one_line_naming_it(tmp_path: Path, port: str) -> None:
    with pytest.raises(ConfigurationError, match="ADMIN_PORT"):
        load_settings(_env(tmp_path, ADMIN_PORT=port))
