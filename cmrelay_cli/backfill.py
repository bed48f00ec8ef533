"""`cmrelay backfill PATH...`: queue Segment history from files (NDJSON, gzip or not, arrays,
batch bodies; directories in file-name order) as the ingest would; `cmrelay backfill status`
shows every file's checkpoint, the counters, delivered, rate and ETA, from any host."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

from cmrelay_cli.backfill_diff import DEFAULT_SAMPLE
from cmrelay_cli.backfill_progress import (
    DELIVERED_FIELD,
    ProgressLine,
    delivered_reader,
    describe,
    stored_snapshot,
)
from ingest.backfill import Tally

__all__ = ["ProgressLine", "register", "run", "status"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `backfill` subcommand to the cmrelay parser."""
    cmd = subparsers.add_parser(
        "backfill",
        help="queue Segment history from files; `backfill status` shows the checkpoints",
        description=__doc__,
    )
    cmd.add_argument("paths", nargs="+", metavar="PATH", help="files or directories; or `status`")
    cmd.add_argument("--dry-run", action="store_true",
                     help="counts by type, entities it would touch, what would change for a "
                          "sample (map --diff); queues nothing")  # fmt: skip
    cmd.add_argument("--diff-sample", type=int, default=DEFAULT_SAMPLE, metavar="N",
                     help=f"--dry-run: entities to diff against ChartMogul (default "
                          f"{DEFAULT_SAMPLE}, 0: none)")  # fmt: skip
    cmd.add_argument("--restart", action="store_true",
                     help="ignore the checkpoints and read every file from its start")  # fmt: skip
    cmd.add_argument("--source", default=None,
                     help="envelope source that scopes dedupe (default: backfill)")  # fmt: skip
    cmd.add_argument("--batch-size", type=int, default=500, help="events per push (default 500)")
    cmd.add_argument("--limit", type=int, default=None,
                     help="stop after N items (checkpointed; the next run goes on)")  # fmt: skip
    cmd.add_argument("--progress-every", type=float, default=10.0,
                     help="seconds between progress lines when not on a terminal")  # fmt: skip
    cmd.add_argument("--sample", type=float, default=2.0, metavar="SECONDS",
                     help="status: seconds to watch the counters for rates and ETA "
                          "(default 2, 0: no rates)")  # fmt: skip
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Handler of `cmrelay backfill`: 0 when every file was read (rejected items included)."""
    from cmrelay.keys import Keys
    from cmrelay.redis_conn import connect
    from cmrelay.settings import load_settings
    from cmrelay_cli.backfill_diff import EntitySample, print_diff, print_entities
    from ingest.backfill import DEFAULT_SOURCE, Backfill, BackfillError, history_files
    from worker.mapping import load_mapping_policy

    out, err = out or sys.stdout, err or sys.stderr
    settings = load_settings()
    client = connect(settings.redis_url)
    keys = Keys(settings.key_prefix)
    if args.paths == ["status"]:
        return status(client, keys, out, sample=args.sample)
    if args.batch_size < 1:
        print("cmrelay backfill: --batch-size must be at least 1", file=err)
        return 2
    try:
        files = history_files(args.paths)
    except BackfillError as exc:
        print(f"cmrelay backfill: {exc}", file=err)
        return 2
    # A dry run reads no Redis at all: it works on a laptop with only the files.
    delivered = None if args.dry_run else delivered_reader(client, keys)
    progress = ProgressLine(err, args.progress_every, delivered)
    sample = EntitySample(load_mapping_policy(settings), max(0, args.diff_sample))
    backfill = Backfill(
        client,
        keys,
        high_water=settings.ingest_high_water,
        max_scheduled=settings.backfill_max_scheduled,
        batch_size=args.batch_size,
        source=args.source or DEFAULT_SOURCE,
        on_rejected=lambda where, why: progress.message(f"{where}: {why}"),
        on_progress=progress,
        on_event=sample if args.dry_run else None,
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
        print_entities(sample, out)
        print_diff(sample, settings, out, err)
    return 0


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


def status(client: Any, keys: Any, out: TextIO, *, sample: float = 2.0) -> int:
    """Every file's checkpoint, the counters over all runs with delivered, rates and ETA
    (watched for `sample` seconds), and the queue length."""
    first = _stored(client, keys)
    if sample > 0:
        time.sleep(sample)  # the rates need two readings of the counters
    rows, now = _stored(client, keys) if sample > 0 else first
    for cp in rows:
        state = "done" if cp.get("done") else f"at line {cp.get('line')}"
        print(f"{cp.get('path')}: {state}  read {cp.get('read', 0)}  queued "
              f"{cp.get('queued', 0)}  rejected {cp.get('rejected', 0)}  ignored "
              f"{cp.get('ignored', 0)}  (updated {cp.get('updated_at')})", file=out)  # fmt: skip
    if not rows:
        print("no backfill checkpoints", file=out)
    print("total: " + describe(first[1], now), file=out)
    print(f"ingest queue length: {client.llen(keys.ingest_queue)}", file=out)
    return 0


def _stored(client: Any, keys: Any) -> tuple[list[dict[str, Any]], Any]:
    """(checkpoints by path, the snapshot they and the counters make), read in one pipeline."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.backfill_checkpoints)
    pipe.hgetall(keys.backfill_counters)
    pipe.hget(keys.counters, DELIVERED_FIELD)
    raw, counts, delivered = pipe.execute()
    rows: list[dict[str, Any]] = sorted((orjson.loads(v) for v in raw.values()),
                                        key=lambda c: str(c.get("path")))  # fmt: skip
    counters: Mapping[str, int] = {k.decode(): int(v) for k, v in counts.items()}
    return rows, stored_snapshot(rows, counters, int(delivered or 0), time.monotonic())
