"""`cmrelay trace MESSAGE_ID`: where an event is, and what became of it."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from cmrelay.trace_view import render_trace
from cmrelay_cli.output import emit, read_view


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `trace` subcommand to the cmrelay parser."""
    cmd = subparsers.add_parser(
        "trace",
        help="an event's life: accepted (when, from which source), its customer, its outcome",
        description=__doc__,
    )
    cmd.add_argument("message_id", help="the Segment messageId")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of `cmrelay trace`; exit 1 when the relay has no trace of the event."""
    from cmrelay.settings import load_settings
    from cmrelay.trace_view import trace_view

    out = out or sys.stdout
    settings = load_settings()
    view = read_view(settings, lambda client, keys: trace_view(client, keys, args.message_id))
    if view is None:
        hours = settings.trace_retention / 3600
        print(f"no trace of {args.message_id!r}: not taken off the queue yet (see `cmrelay "
              f"metrics`), never sent here, or older than TRACE_RETENTION ({hours:g} h)",
              file=sys.stderr)  # fmt: skip
        return 1
    emit(view, args.json, render_trace, out)
    return 0
