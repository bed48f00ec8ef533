"""`cmrelay trace MESSAGE_ID`: where an event is, and what became of it."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

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
    emit(view, args.json, render, out)
    return 0


def render(view: dict[str, Any]) -> str:
    """A readable trail; event data is repr-escaped."""
    lines = [f"event {view['message_id']!r} ({view.get('type')}, source {view.get('source')!r}, "
             f"via {view.get('origin')})"]  # fmt: skip
    if view.get("received_at"):
        lines.append(f"  acknowledged by the ingest at {view['received_at']}")
    if view["accepted_at"] is not None:
        lines.append(f"  taken by a worker at {_when(view['accepted_at'])}"
                     + (f", for {view['entity']}" if view.get("entity") else ""))  # fmt: skip
    if view["duplicates"]:
        lines.append(f"  seen again {view['duplicates']} time(s) with the same messageId (dropped)")
    state = view["state"]
    at = f" at {_when(view['outcome_at'])}" if view["outcome_at"] is not None else ""
    lines.append(f"  now: {state}{at}" + _meaning(state))
    for dead in view["dead_letters"]:
        lines.append(f"  dead letter {dead['id']} [{dead['status']}] {dead['reason']}: "
                     f"{dead['last_error']!r}")  # fmt: skip
    return "\n".join(lines) + "\n"


_MEANINGS = {
    "accepted": " (waiting in its customer's mailbox for delivery)",
    "delivered": " (ChartMogul has it)",
    "unchanged": " (ChartMogul already held everything it says: no call needed)",
    "retrying": " (ChartMogul failed; backing off, see `cmrelay entity`)",
    "dead_lettered": " (see the dead letter below; `cmrelay dlq replay`)",
    "waiting_for_group": " (COMPANY_CREATION=group: held until a Group call links the user)",
}


def _meaning(state: str | None) -> str:
    return _MEANINGS.get(state or "", "")


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
