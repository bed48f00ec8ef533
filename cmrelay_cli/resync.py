"""`cmrelay resync ENTITY... | --all | --since AGE`: the relay forgets what it believed
ChartMogul holds for these customers, re-reads ChartMogul and sends its own view of them again,
in the backfill lane (live traffic keeps its share of the rate)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from cmrelay.errors import DeliveryError, InvalidQueryError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `resync` subcommand to the cmrelay parser."""
    cmd = subparsers.add_parser(
        "resync",
        help="re-read ChartMogul for customers and send the relay's view of them again",
        description=__doc__,
    )
    cmd.add_argument("entities", nargs="*", metavar="ENTITY", help="e.g. customer:acme")
    cmd.add_argument("--all", action="store_true", help="every customer the relay holds a view of")
    cmd.add_argument("--since", metavar="AGE",
                     help="only customers confirmed within AGE (30m, 2h, 7d)")  # fmt: skip
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Handler of `cmrelay resync`; exit 1 when any entity could not be resynced."""
    from cmrelay.dlq.query import parse_duration
    from cmrelay.keys import ENTITY_PREFIX
    from cmrelay.settings import load_settings
    from worker.pipeline.engine import Engine
    from worker.pipeline.resync import held_entities, resync_entity

    out = out or sys.stdout
    since_raw = getattr(args, "since", None)
    if bool(args.entities) == bool(args.all or since_raw):
        print("cmrelay resync: name ENTITY..., or --all / --since AGE (not both)", file=sys.stderr)
        return 2
    try:
        since = parse_duration(since_raw) if since_raw else None
    except InvalidQueryError as exc:
        print(f"cmrelay resync: --since: {exc}", file=sys.stderr)
        return 2
    wrong = [e for e in args.entities if not e.startswith(ENTITY_PREFIX)]
    if wrong:
        print(f"cmrelay resync: entities look like {ENTITY_PREFIX}ID, not {wrong[0]!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    settings = load_settings()
    settings.require_delivery()
    engine = Engine.from_settings(settings)
    entities = list(held_entities(engine, since)) if not args.entities else list(args.entities)
    failures = 0
    for entity in entities:
        try:
            result = resync_entity(engine, entity)
        except DeliveryError as exc:
            result, failures = f"failed: {exc}", failures + 1
        else:
            failures += result.startswith("busy")
        print(f"{entity}: {result}", file=out)
    if not entities:
        print("nothing to resync: the relay holds no customer's view", file=out)
    engine.deliverer.close()
    return 1 if failures else 0
