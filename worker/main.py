"""`cmrelay worker`: check the settings, then run a Celery worker with the relay's app."""

from __future__ import annotations

from collections.abc import Sequence

from config.settings import load_settings
from worker.delivery import load_deliverer
from worker.engine import Engine

DEFAULT_POOL = ["--pool", "threads"]  # HTTP-bound work: prefork's throughput at 1/8 the memory
DEFAULT_CONCURRENCY = ["--concurrency", "8"]


def _has(args: Sequence[str], *names: str) -> bool:
    return any(a == n or a.startswith(n + "=") for a in args for n in names)


def worker_argv(celery_args: Sequence[str], log_level: str = "INFO") -> list[str]:
    """Celery's argv: ours as defaults, anything the operator passed wins."""
    argv = ["worker", *celery_args]
    if not _has(celery_args, "--loglevel", "-l"):
        argv += ["--loglevel", log_level]
    if not _has(celery_args, "--pool", "-P"):
        argv += DEFAULT_POOL
    if not _has(celery_args, "--concurrency", "-c"):
        argv += DEFAULT_CONCURRENCY
    return argv


def run_worker(celery_args: Sequence[str]) -> int:
    """Fail with one line on bad settings (raising ConfigurationError), else run the worker."""
    settings = load_settings()
    engine = Engine.from_settings(settings)
    try:
        engine.policy  # noqa: B018 - a bad MAPPING_FILE stops the start with one line
        load_deliverer(settings, engine.gate).close()  # builds nothing it keeps; only checks
    finally:
        engine.close()
    from worker.celery_app import app

    app.worker_main(worker_argv(celery_args, settings.log_level))
    return 0
