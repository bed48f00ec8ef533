"""`cmrelay`: one command for every part of the relay. Subcommands import their part lazily."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cmrelay.errors import ConfigurationError
from sandbox.server import add_sandbox_arguments

Handler = Callable[[argparse.Namespace], int]


def _ingest(args: argparse.Namespace) -> int:
    from config import load_settings
    from ingest.server import serve

    settings = load_settings()
    settings.require_ingest_keys()
    return serve(settings, host=args.host, port=args.port)


def _worker(args: argparse.Namespace) -> int:
    from worker.main import run_worker

    return run_worker(args.celery_args)


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox.server import serve_sandbox

    return serve_sandbox(args)


def _run(args: argparse.Namespace) -> int:
    from cmrelay.embedded import run_embedded

    return run_embedded(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="cmrelay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="serve the Segment-compatible ingest endpoint")
    ingest.add_argument("--host", default=None, help="override INGEST_HOST")
    ingest.add_argument("--port", type=int, default=None, help="override INGEST_PORT")
    ingest.set_defaults(handler=_ingest)

    worker = sub.add_parser("worker", help="start a Celery worker (extra args go to celery)")
    worker.add_argument("celery_args", nargs=argparse.REMAINDER)
    worker.set_defaults(handler=_worker)

    sandbox = sub.add_parser("sandbox", help="serve the offline ChartMogul API sandbox")
    add_sandbox_arguments(sandbox)
    sandbox.set_defaults(handler=_sandbox)

    run = sub.add_parser("run", help="the whole relay on embedded defaults, in the foreground")
    run.set_defaults(handler=_run)

    _add_optional(sub)
    return parser


def _add_optional(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands provided by parts that register themselves (map, dlq, ...)."""
    for module_name in ("cmrelay.ops_cli", "worker.map_cli", "worker.dlq_cli", "admin.cli"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError:
            continue
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cmrelay` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigurationError as exc:
        print(f"cmrelay: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
