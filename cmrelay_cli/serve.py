"""`cmrelay ingest | worker | sandbox | admin`: each part of the relay in the foreground.

Each handler imports its part when it runs: `worker.celery_app` builds its Celery app from the
settings at import (as `celery -A` needs), and a probe such as `cmrelay worker-health` should
not pay for loading every server.
"""

from __future__ import annotations

import argparse

from cmrelay.settings import load_settings
from sandbox.server import add_sandbox_arguments


def _ingest(args: argparse.Namespace) -> int:
    from ingest.server import serve

    settings = load_settings()
    settings.require_ingest_keys()
    return serve(settings, host=args.host, port=args.port)


def _worker(args: argparse.Namespace) -> int:
    from worker.celery_app import run_worker

    return run_worker(args.celery_args)


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox.server import serve_sandbox

    return serve_sandbox(args)


def _admin(args: argparse.Namespace) -> int:
    from admin.server import serve

    return serve(load_settings(), args.host, args.port)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the serving subcommands to the `cmrelay` parser."""
    ingest = sub.add_parser("ingest", help="serve the Segment-compatible ingest endpoint")
    ingest.add_argument("--host", default=None, help="override INGEST_HOST")
    ingest.add_argument("--port", type=int, default=None, help="override INGEST_PORT")
    ingest.set_defaults(handler=_ingest)

    worker = sub.add_parser(
        "worker", help="start a Celery worker (every further argument goes to celery)"
    )
    worker.add_argument("celery_args", nargs=argparse.REMAINDER)
    worker.set_defaults(handler=_worker)

    sandbox = sub.add_parser("sandbox", help="serve the offline ChartMogul API sandbox")
    add_sandbox_arguments(sandbox)
    sandbox.set_defaults(handler=_sandbox)

    admin = sub.add_parser("admin", help="serve the DLQ admin API and web page (ADMIN_TOKEN)")
    admin.add_argument("--host", default=None, help="override ADMIN_HOST")
    admin.add_argument("--port", type=int, default=None, help="override ADMIN_PORT")
    admin.set_defaults(handler=_admin)
