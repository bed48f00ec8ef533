"""Start a Celery worker for the relay (filled in by the worker work)."""

from __future__ import annotations

from collections.abc import Sequence

from cmrelay.errors import ConfigurationError


def run_worker(celery_args: Sequence[str]) -> int:
    """Run a Celery worker in the foreground."""
    raise ConfigurationError("the worker is not built yet")
