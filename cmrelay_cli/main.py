"""`cmrelay`: one command for every part of the relay; every subcommand is registered here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cmrelay.errors import ConfigurationError
from cmrelay_cli import backfill, dlq, entity, map, ops, resync, run, serve, trace

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="cmrelay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (serve, run, ops, map, dlq, resync, entity, trace, backfill):
        command.register(sub)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; `cmrelay worker ...` hands everything after it to Celery."""
    parser = build_parser()
    if list(argv[:1]) == ["worker"]:
        # argparse would take Celery's options (`-c 2`, `-E`) for unknown options of ours.
        args = parser.parse_args(["worker"])
        args.celery_args = list(argv[1:])
        return args
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cmrelay` console script."""
    args = parse(sys.argv[1:] if argv is None else argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigurationError as exc:
        print(f"cmrelay: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
