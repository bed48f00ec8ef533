"""`cmrelay entity customer:ID`: everything the relay holds for one customer, from Redis."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

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
    emit(view, args.json, render, out)
    return 0


def render(view: dict[str, Any]) -> str:
    """A readable summary (control characters in event data are escaped by repr)."""
    lines = [f"{view['entity']}  ChartMogul uuid: {view['chartmogul_uuid'] or '(not known)'}"]
    due = view["due_in_seconds"]
    lines.append(f"pending events: {view['pending_events']}"
                 + ("" if due is None else f", due in {due:.1f} s"))  # fmt: skip
    for event in view["pending"]:
        lines.append(
            f"  {event.get('message_id')!r} {event.get('type')} at {event.get('timestamp')}"
        )
    if view["leased"]:
        lines.append(f"being delivered now (lease {view['lease_ms_left']} ms left)")
    if view["retry"]:
        lines.append(f"retrying: attempt {view['retry'].get('attempts')}, last error "
                     f"{view['retry'].get('last_error')!r}")  # fmt: skip
    held = view["confirmed_state"]
    if held is None:
        lines.append("ChartMogul's state: not held (the next delivery reads it)")
    else:
        customer = held["c"]
        values = json.dumps({**customer["s"], **customer["c"]}, ensure_ascii=True)
        ttl = view["confirmed_state_ttl_seconds"]
        lines.append(f"ChartMogul confirmed holding (trusted {ttl} s more): {values}")
        if customer["r"]:
            lines.append(f"  not kept by ChartMogul: {sorted(customer['r'])}")
        lines.append(f"  contacts known: {len(held['k'])}"
                     + ("" if held["all"] else " (not listed yet)"))  # fmt: skip
    for dead in view["dead_letters"]:
        lines.append(f"dead letter {dead['id']} [{dead['status']}] {dead['reason']}: "
                     f"{dead['last_error']!r} ({dead['events']} events)")  # fmt: skip
    return "\n".join(lines) + "\n"
