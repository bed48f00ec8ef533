"""Serve the ChartMogul sandbox (filled in by the sandbox work)."""

from __future__ import annotations

import argparse

from cmrelay.errors import ConfigurationError


def serve_sandbox(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground."""
    raise ConfigurationError("the sandbox is not built yet")
