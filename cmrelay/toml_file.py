"""Read a TOML file the relay was pointed at, failing with one line that names it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cmrelay.errors import ConfigurationError


def load_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed file; ConfigurationError("<what> <path>: <why>") when unreadable or invalid."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"{what} {path}: cannot read it: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{what} {path} is not valid TOML: {exc}") from None
