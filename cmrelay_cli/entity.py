"""`cmrelay entity customer:ID`: everything the relay holds for one customer, from Redis."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from cmrelay.entity_view import render_entity
from cmrelay_cli.output import emit, read_view


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `entity` subcommand to the cmrelay parser."""
    cmd = subparsers.add_parser(
        "entity",
        help="show one customer's pending events, schedule, lease, retries, what ChartMogul "
        "was last confirmed to hold, and its dead letters",
        description=__doc__,
    )
    cmd.add_argument("entity", help="customer:<external id>")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of `cmrelay entity`."""
    from cmrelay.entity_view import entity_view
    from cmrelay.keys import ENTITY_PREFIX
    from cmrelay.settings import load_settings

    out = out or sys.stdout
    if not args.entity.startswith(ENTITY_PREFIX):
        print(f"cmrelay entity: name it as {ENTITY_PREFIX}<external id>, not {args.entity!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    settings = load_settings()
    view = read_view(
        settings, lambda client, keys: entity_view(client, keys, args.entity, time.time())
    )
    emit(view, args.json, render_entity, out)
    return 0
