"""`cmrelay run`: the whole relay on embedded defaults (filled in once the parts exist)."""

from __future__ import annotations

import argparse

from cmrelay.errors import ConfigurationError


def run_embedded(args: argparse.Namespace) -> int:
    """Start every part in the foreground; Ctrl-C stops them all."""
    raise ConfigurationError("embedded mode is not built yet")
