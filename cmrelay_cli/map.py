"""`cmrelay map`: show the ChartMogul operations a Segment event would cause, sending nothing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from typing import Any, TextIO

from cmrelay.errors import ConfigurationError, DeliveryError
from worker.mapping import MappingPolicy, load_mapping_policy, plan_event, route_event
from worker.mapping.operations import Operation, diff_operations, plan_operations

# Reads the customer and its contacts; returns (customer or None, contacts).
StateReader = Callable[[str], tuple[dict[str, Any] | None, list[dict[str, Any]]]]
# The relay's record of what ChartMogul did not keep: customer external id -> {who: names}.
NotKept = Callable[[str], dict[str, set[str]]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `map` subcommand to the cmrelay parser."""
    cmd = subparsers.add_parser(
        "map",
        help="print the ChartMogul operations a Segment event would cause (sends nothing)",
        description=__doc__,
    )
    cmd.add_argument("file", nargs="?", default="-", help="event JSON file (default: stdin)")
    cmd.add_argument("--json", action="store_true", help="print JSON instead of a readable list")
    cmd.add_argument(
        "--diff", action="store_true", help="read ChartMogul's current state; show only changes"
    )
    cmd.add_argument("--linked-group", help="treat the user as linked to this groupId")
    cmd.add_argument(
        "--company-creation", choices=("identify", "group"), help="override COMPANY_CREATION"
    )
    cmd.set_defaults(handler=run)


def read_events(text: str) -> list[dict[str, Any]]:
    """One event, a JSON list of events, or a Segment batch body ({"batch": [...]})."""
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("batch"), list):
        data = data["batch"]
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


def describe(
    events: Iterable[dict[str, Any]],
    policy: MappingPolicy,
    linked_group: str | None,
    read_state: StateReader | None = None,
    not_kept: NotKept | None = None,
) -> list[dict[str, Any]]:
    """The route, operations and dropped values of each event (with current state when given)."""
    results = []
    for event in events:
        route = route_event(event, policy, linked_group)
        result: dict[str, Any] = {
            "type": event.get("type"),
            "messageId": event.get("messageId"),
            "route": asdict(route),
            "operations": [],
            "dropped": [],
        }
        customer_id = route.customer_external_id
        if route.outcome == "deliver" and customer_id:
            plan = plan_event(event, customer_id, policy)
            result["dropped"] = [asdict(d) for d in plan.dropped]
            if read_state is None:
                result["operations"] = plan_operations(plan, customer_id)
            else:
                customer, contacts = read_state(customer_id)
                ops = diff_operations(plan, customer_id, customer, contacts)
                result["operations"] = _mark_not_kept(
                    ops, plan, not_kept(customer_id) if not_kept else {}
                )
        results.append(result)
    return results


def _mark_not_kept(
    ops: list[Operation], plan: Any, refused: dict[str, set[str]]
) -> list[Operation]:
    """Flag changes ChartMogul accepted but did not keep the last time the relay sent them."""
    contact = plan.contact.external_id if plan.contact is not None else None
    for op in ops:
        who = contact if op["op"] == "update_contact" else ""
        names = sorted(set(op.get("changes", {})) & refused.get(who or "", set()))
        if names:
            op["not_kept_by_chartmogul"] = names
    return ops


def render(results: list[dict[str, Any]], out: TextIO) -> None:
    """A readable list: one header line per event, one line per operation."""
    for result in results:
        route = result["route"]
        target = route["customer_external_id"]
        head = f"{result['type']} {result['messageId'] or ''}".strip()
        if route["outcome"] == "deliver":
            out.write(f"{head}: deliver to customer {target!r}\n")
        else:
            out.write(f"{head}: {route['outcome']} ({route['reason']})\n")
        for op in result["operations"]:
            out.write(f"  {_op_line(op)}\n")
        if route["outcome"] == "deliver" and not result["operations"]:
            out.write("  no changes\n")
        for dropped in result["dropped"]:
            out.write(f"  dropped {dropped['field']}: {dropped['reason']}\n")


def _op_line(op: Operation) -> str:
    details = {k: v for k, v in op.items() if k not in ("op", "not_kept_by_chartmogul")}
    if op.get("not_kept_by_chartmogul"):
        details["note"] = (
            f"ChartMogul did not keep {', '.join(op['not_kept_by_chartmogul'])} last time; "
            "the relay does not resend an unchanged value"
        )
    return f"{op['op']} " + " ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in details.items()
    )


def _state_reader(settings: Any) -> tuple[StateReader, Callable[[], None]]:
    from worker.delivery.api.client import ChartMogulClient

    if not settings.chartmogul_api_key or not settings.chartmogul_data_source_uuid:
        raise ConfigurationError(
            "map --diff needs CHARTMOGUL_API_KEY and CHARTMOGUL_DATA_SOURCE_UUID"
        )
    client = ChartMogulClient.from_settings(settings)

    def read(external_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        customer = client.find_customer(external_id)
        if customer is None:
            return None, []
        return customer, client.find_contacts(customer_uuid=str(customer["uuid"]))

    return read, client.close


def _not_kept_reader(settings: Any) -> NotKept:
    """What the relay's confirmed-state record says ChartMogul did not keep (empty when Redis
    cannot be reached: the diff against ChartMogul is still right)."""
    import redis

    from cmrelay.keys import Keys
    from cmrelay.redis_conn import connect
    from worker.delivery.api.held_store import HeldStore

    def read(external_id: str) -> dict[str, set[str]]:
        try:
            client = connect(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
            held = HeldStore(client, Keys(settings.key_prefix), settings.confirmed_state_ttl)
            record = held.load(external_id)
            client.close()
        except redis.RedisError:
            return {}
        if record is None:
            return {}
        out = {"": set(record.customer.refused)}
        out |= {uid: set(part.refused) for uid, part in record.contacts.items()}
        return out

    return read


def run(args: argparse.Namespace, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Handler of `cmrelay map`."""
    from cmrelay.settings import load_settings

    out = out or sys.stdout
    settings = load_settings()
    if args.company_creation:
        settings = replace(settings, company_creation=args.company_creation)
    policy = load_mapping_policy(settings)
    try:
        if args.file == "-":
            text = (stdin or sys.stdin).read()
        else:
            with open(args.file, encoding="utf-8") as handle:
                text = handle.read()
        events = read_events(text)
    except (OSError, ValueError) as exc:
        print(f"cmrelay map: cannot read an event: {exc}", file=sys.stderr)
        return 1
    reader, close = _state_reader(settings) if args.diff else (None, lambda: None)
    try:
        not_kept = _not_kept_reader(settings) if args.diff else None
        results = describe(events, policy, args.linked_group, reader, not_kept)
    except DeliveryError as exc:
        print(f"cmrelay map: cannot read ChartMogul's state: {exc}", file=sys.stderr)
        return 1
    finally:
        close()
    if args.json:
        json.dump(results, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        render(results, out)
    return 0
