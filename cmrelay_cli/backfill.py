"""`cmrelay backfill PATH...`: queue Segment history from files (NDJSON, gzip or not, arrays,
batch bodies; directories in file-name order) as the ingest would; `cmrelay backfill status`
shows every file's checkpoint and the counters, from any host."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

from ingest.backfill import Tally

_TTY_EVERY = 0.2  # seconds between redraws of the progress line on a terminal
_SHOWN_ENTITIES = 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `backfill` subcommand to the cmrelay parser."""
    cmd = subparsers.add_parser(
        "backfill",
        help="queue Segment history from files; `backfill status` shows the checkpoints",
        description=__doc__,
    )
    cmd.add_argument("paths", nargs="+", metavar="PATH", help="files or directories; or `status`")
    cmd.add_argument("--dry-run", action="store_true",
                     help="counts by type, entities it would touch; queues nothing")  # fmt: skip
    cmd.add_argument("--restart", action="store_true",
                     help="ignore the checkpoints and read every file from its start")  # fmt: skip
    cmd.add_argument("--source", default=None,
                     help="envelope source that scopes dedupe (default: backfill)")  # fmt: skip
    cmd.add_argument("--batch-size", type=int, default=500, help="events per push (default 500)")
    cmd.add_argument("--limit", type=int, default=None,
                     help="stop after N items (checkpointed; the next run goes on)")  # fmt: skip
    cmd.add_argument("--progress-every", type=float, default=10.0,
                     help="seconds between progress lines when not on a terminal")  # fmt: skip
    cmd.set_defaults(handler=run)


class ProgressLine:
    """A redrawn line on a terminal, a plain line every `every` seconds otherwise."""

    def __init__(self, out: TextIO, every: float) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = _TTY_EVERY if self.tty else every
        self.started = time.monotonic()
        self.last = self.started

    def __call__(self, tally: Tally, *, final: bool = False) -> None:
        """Show the counts if it is time (always when final)."""
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last = now
        rate = tally.read / max(now - self.started, 1e-6)
        text = (f"read {tally.read}  queued {tally.queued}  rejected {tally.rejected}  "
                f"ignored {tally.ignored}  {rate:,.0f} events/s")  # fmt: skip
        if self.tty:
            self.out.write("\r\x1b[K" + text + ("\n" if final else ""))
        elif not final:
            self.out.write(f"backfill progress: {text}\n")
        self.out.flush()


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Handler of `cmrelay backfill`: 0 when every file was read (rejected items included)."""
    from cmrelay.keys import Keys
    from cmrelay.redis_conn import connect
    from cmrelay.settings import load_settings
    from ingest.backfill import DEFAULT_SOURCE, Backfill, BackfillError, history_files

    out, err = out or sys.stdout, err or sys.stderr
    settings = load_settings()
    client = connect(settings.redis_url)
    keys = Keys(settings.key_prefix)
    if args.paths == ["status"]:
        return status(client, keys, out)
    if args.batch_size < 1:
        print("cmrelay backfill: --batch-size must be at least 1", file=err)
        return 2
    try:
        files = history_files(args.paths)
    except BackfillError as exc:
        print(f"cmrelay backfill: {exc}", file=err)
        return 2
    progress = ProgressLine(err, args.progress_every)
    touched: Counter[str] = Counter()
    backfill = Backfill(
        client,
        keys,
        high_water=settings.ingest_high_water,
        batch_size=args.batch_size,
        source=args.source or DEFAULT_SOURCE,
        on_rejected=lambda where, why: print(f"{where}: {why}", file=err),
        on_progress=progress,
        on_event=_entity_counter(settings, touched) if args.dry_run else None,
    )
    try:
        tally = backfill.run(files, dry_run=args.dry_run, restart=args.restart, limit=args.limit)
    except BackfillError as exc:
        print(f"cmrelay backfill: {exc}", file=err)
        return 2
    finally:
        client.close()
    progress(backfill.total, final=True)
    _summary(tally, len(files), out, dry_run=args.dry_run)
    if args.dry_run:
        _entities(touched, out)
    return 0


def _entity_counter(settings: Any, touched: Counter[str]) -> Any:
    """Counts events per entity they would be filed under, by the worker's own routing (links
    learned from Group calls earlier in the files count, as the accept step would see them)."""
    from cmrelay.keys import entity_key
    from worker.mapping import group_link, link_subject, load_mapping_policy, route_event

    policy = load_mapping_policy(settings)
    links: dict[str, str] = {}

    def seen(event: dict[str, Any]) -> None:
        link = group_link(event)
        if link:
            links[link[0]] = link[1]
        subject = link_subject(event) if event.get("type") == "identify" else None
        route = route_event(event, policy, links.get(subject) if subject else None)
        if route.outcome == "deliver" and route.customer_external_id is not None:
            touched[entity_key(route.customer_external_id)] += 1
        else:
            touched[f"({route.outcome})"] += 1

    return seen


def _summary(tally: Tally, files: int, out: TextIO, *, dry_run: bool) -> None:
    verb = "would queue" if dry_run else "queued"
    queued = tally.read - tally.rejected - tally.ignored if dry_run else tally.queued
    print(f"files {files} (already done {tally.skipped_files}), read {tally.read}, "
          f"{verb} {queued}, ignored {tally.ignored}, rejected {tally.rejected}",
          file=out)  # fmt: skip
    if tally.by_type:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(tally.by_type.items()))
        print(f"by type: {kinds}", file=out)
    for reason, count in tally.reasons.most_common(10):
        print(f"rejected {count}: {reason}", file=out)


def _entities(touched: Counter[str], out: TextIO) -> None:
    real = {e: n for e, n in touched.items() if not e.startswith("(")}
    print(f"entities it would touch: {len(real)}", file=out)
    for entity, count in Counter(real).most_common(_SHOWN_ENTITIES):
        print(f"  {entity}  {count} events", file=out)
    if len(real) > _SHOWN_ENTITIES:
        print(f"  ... and {len(real) - _SHOWN_ENTITIES} more", file=out)
    for outcome, count in sorted((e, n) for e, n in touched.items() if e.startswith("(")):
        print(f"  {outcome}  {count} events", file=out)


def status(client: Any, keys: Any, out: TextIO) -> int:
    """Every file's checkpoint, the counters over all runs, and the queue length."""
    raw: Mapping[bytes, bytes] = client.hgetall(keys.backfill_checkpoints)
    rows = sorted((orjson.loads(v) for v in raw.values()), key=lambda c: str(c.get("path")))
    for cp in rows:
        state = "done" if cp.get("done") else f"at line {cp.get('line')}"
        print(f"{cp.get('path')}: {state}  read {cp.get('read', 0)}  queued "
              f"{cp.get('queued', 0)}  rejected {cp.get('rejected', 0)}  ignored "
              f"{cp.get('ignored', 0)}  (updated {cp.get('updated_at')})", file=out)  # fmt: skip
    if not rows:
        print("no backfill checkpoints", file=out)
    counters = {k.decode(): int(v) for k, v in client.hgetall(keys.backfill_counters).items()}
    names = ("read", "queued", "ignored", "rejected")
    print("total: " + "  ".join(f"{n} {counters.get(n, 0)}" for n in names), file=out)
    print(f"ingest queue length: {client.llen(keys.ingest_queue)}", file=out)
    return 0
