"""`cmrelay dlq`: stats, list, show, replay and purge dead letters from a terminal or a script."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis

from cmrelay.dlq import query as q
from cmrelay.dlq.follow import Progress, follow
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.errors import InvalidQueryError
from cmrelay.settings import Settings, load_settings
from cmrelay_cli.dlq_render import (
    LIST_COLUMNS,
    ProgressBar,
    follow_line,
    follow_summary_text,
    show_text,
    stats_text,
    table,
)
from cmrelay_cli.progress import StatusLine

DEFAULT_WAIT = 600.0
EXIT_DEAD_AGAIN = 3  # --wait: some replayed events were dead-lettered again
EXIT_TIMED_OUT = 4  # --wait: some had no outcome yet when --timeout passed

Handler = Callable[[argparse.Namespace, Settings, DeadLetterQueue], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `cmrelay dlq ...` to the main parser."""
    parser = sub.add_parser("dlq", help="inspect, replay and purge dead letters")
    dsub = parser.add_subparsers(dest="dlq_command", required=True)

    stats = dsub.add_parser("stats", help="counts by reason, status, HTTP status, class and age")
    _json_flag(stats, "one JSON object")
    stats.set_defaults(handler=_wrap(_stats))

    listing = dsub.add_parser("list", help="entries matching the filters, newest first")
    _filter_flags(listing)
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    _json_flag(listing, "JSON Lines, one entry per line")
    listing.set_defaults(handler=_wrap(_list))

    show = dsub.add_parser("show", help="one entry: events, planned calls, attempts, response")
    show.add_argument("id")
    _json_flag(show, "one JSON object")
    show.set_defaults(handler=_wrap(_show))

    replay = dsub.add_parser("replay", help="re-queue entries (bypassing dedupe), once each")
    replay.add_argument("ids", nargs="*", metavar="ID")
    replay.add_argument("--all", action="store_true", help="every entry not yet replayed")
    _filter_flags(replay)
    replay.add_argument("--dry-run", action="store_true", help="show what would be replayed")
    replay.add_argument(
        "--wait", action="store_true",
        help="then follow the replayed events until each is delivered or dead again",
    )  # fmt: skip
    replay.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT, metavar="SECONDS",
        help=f"with --wait: stop after this long (default {DEFAULT_WAIT:g}; exit {EXIT_TIMED_OUT})",
    )  # fmt: skip
    _json_flag(replay, "one JSON object")
    replay.set_defaults(handler=_wrap(_replay))

    purge = dsub.add_parser("purge", help="delete entries for good (asks first)")
    purge.add_argument("ids", nargs="*", metavar="ID")
    _filter_flags(purge)
    purge.add_argument("--older-than", metavar="AGE", help="only entries older than e.g. 7d")
    purge.add_argument("--yes", action="store_true", help="do not ask (needed without a TTY)")
    purge.set_defaults(handler=_wrap(_purge))


def _json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"machine-readable output ({what})")


def _filter_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", help='e.g. permanent, "retry window expired", partial')
    parser.add_argument("--status", help="dead, replayed, or an HTTP status code such as 422")
    parser.add_argument("--entity", help="e.g. customer:acme")
    parser.add_argument("--error-class", help="e.g. PermanentDeliveryError")
    parser.add_argument("--since", help="ISO time or an age such as 2h, 30m, 7d")
    parser.add_argument("--until", help="ISO time or an age such as 2h, 30m, 7d")
    parser.add_argument("--text", help="substring of the error, entity or events")


def _filter(args: argparse.Namespace, limit: int = q.MAX_SELECTION) -> DlqFilter:
    names = ("reason", "status", "entity", "error_class", "since", "until", "text")
    params = {name: getattr(args, name) for name in names}
    return q.build_filter(params, time.time(), limit=limit)


def _wrap(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Load settings and the DLQ; turn bad input and an unreachable Redis into one line."""

    def run(args: argparse.Namespace) -> int:
        settings = load_settings()
        dlq = DeadLetterQueue.from_settings(settings)
        try:
            return handler(args, settings, dlq)
        except InvalidQueryError as exc:
            print(f"cmrelay dlq: {exc}", file=sys.stderr)
            return 2
        except redis.RedisError as exc:
            print(f"cmrelay dlq: Redis error: {type(exc).__name__}", file=sys.stderr)
            return 1
        finally:
            dlq.client.close()

    return run


def _emit_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def _stats(args: argparse.Namespace, settings: Settings, dlq: DeadLetterQueue) -> int:
    stats = dlq.stats()
    if args.json:
        _emit_json(stats)
    else:
        print(stats_text(stats))
    return 0


def _list(args: argparse.Namespace, settings: Settings, dlq: DeadLetterQueue) -> int:
    if not 0 < args.limit <= q.MAX_SELECTION:
        raise InvalidQueryError(f"--limit must be from 1 to {q.MAX_SELECTION}")
    rows = [q.summary(e, settings) for e in dlq.list(_filter(args, args.limit))]
    if args.json:
        for row in rows:
            _emit_json(row)
    elif rows:
        print(table(rows, LIST_COLUMNS))
    else:
        print("no dead letters match", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, settings: Settings, dlq: DeadLetterQueue) -> int:
    entry = dlq.get(args.id)
    if entry is None:
        print(
            f"cmrelay dlq: no entry {args.id!r} (unknown, purged or past retention)",
            file=sys.stderr,
        )
        return 1
    view = q.detail(entry, settings)
    if args.json:
        _emit_json(view)
    else:
        print(show_text(view))
    return 0


def _replay(args: argparse.Namespace, settings: Settings, dlq: DeadLetterQueue) -> int:
    flt = _filter(args)
    if not args.ids and not args.all and q.is_empty(flt):
        raise InvalidQueryError("say what to replay: IDs, --all, or filters such as --reason")
    if args.ids and args.all:
        raise InvalidQueryError("give IDs or --all, not both")
    if args.wait:
        _check_wait(args, settings)
    selection = q.select(dlq, args.ids, flt)
    bar = ProgressBar(sys.stderr, "replaying")
    try:
        report = q.replay(dlq, selection, dry_run=args.dry_run, progress=bar)
    finally:
        bar.close()
    if args.json:
        _emit_json(report.as_dict())
    else:
        verb = "would replay" if report.dry_run else "replayed"
        for entry_id in report.replayed:
            print(f"{verb} {entry_id}")
        for entry_id in report.skipped:
            print(f"skipped {entry_id} (already replayed)")
        for entry_id in report.missing:
            print(f"missing {entry_id} (unknown, purged or past retention)")
        print(f"{verb} {len(report.replayed)} entries ({report.events} events)", file=sys.stderr)
    code = 1 if report.missing and not args.json else 0
    if not args.wait:
        return code
    done = set(report.replayed)
    waited = _wait(dlq, [e for e in selection.entries if e.id in done], args.timeout, args.json)
    return waited or code


def _check_wait(args: argparse.Namespace, settings: Settings) -> None:
    if args.dry_run:
        raise InvalidQueryError("--wait follows a replay: not with --dry-run")
    if not args.timeout > 0:
        raise InvalidQueryError("--timeout must be a number of seconds above 0")
    if settings.trace_retention <= 0:
        raise InvalidQueryError("--wait reads the events' trails: TRACE_RETENTION=0 turns them off")


def _wait(dlq: DeadLetterQueue, entries: list[Any], timeout: float, as_json: bool) -> int:
    """Follow the replayed entries to their outcome; the summary is the last stdout line."""
    line = StatusLine(sys.stderr, "dlq replay --wait")

    def shown(progress: Progress) -> None:
        line.show(follow_line(progress, line.tty))

    try:
        result = follow(dlq.client, dlq.keys, entries, timeout=timeout, on_progress=shown)
        line.show(follow_line(result, line.tty), final=True)
    finally:
        line.close()
    summary = result.summary()
    if not as_json:
        print(follow_summary_text(summary), file=sys.stderr)
    _emit_json(summary)
    if summary["dead_again"]:
        return EXIT_DEAD_AGAIN
    return EXIT_TIMED_OUT if result.timed_out else 0


def _purge(args: argparse.Namespace, settings: Settings, dlq: DeadLetterQueue) -> int:
    flt = _filter(args)
    older = q.parse_duration(args.older_than) if args.older_than else None
    if not args.ids and older is None and q.is_empty(flt):
        raise InvalidQueryError("say what to purge: IDs, filters, or --older-than AGE")
    selection = q.select(dlq, args.ids, flt, older, time.time())
    for entry_id in selection.missing:
        print(f"missing {entry_id} (unknown, purged or past retention)", file=sys.stderr)
    count = len(selection.entries)
    if count == 0:
        print("nothing to purge", file=sys.stderr)
        return 0
    if not args.yes and not _confirm(f"Purge {count} dead letters for good? [y/N] "):
        return 2
    purged = dlq.purge(e.id for e in selection.entries)
    print(f"purged {purged} entries")
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        print(
            "cmrelay dlq: refusing to purge without --yes (no terminal to confirm on)",
            file=sys.stderr,
        )
        return False
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in {"y", "yes"}:
        print("not purged", file=sys.stderr)
        return False
    return True
