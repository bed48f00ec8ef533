"""`cmrelay backfill`: Segment history read from files into the ingest queue.

A file holds newline-delimited JSON (one event a line, as Segment's archive and S3 destinations
write it; a line may also be a JSON array or a `{"batch": [...]}` body), or one JSON document
(an array or a batch body) spread over many lines. Gzip is recognised by its magic bytes, not its
name. Every item goes through the ingest's own checks (`ingest.events`), so a backfilled event
is exactly what `POST /v1/batch` would queue, with origin "backfill".

Pure parsing (`records`, `items`, `to_event`) takes a binary stream and touches no Redis;
`Backfill` does the I/O: the push onto the ingest queue (what the ingest's `ingest_push` script
does, in one transaction with the file's checkpoint), the high-water wait and the checkpoints.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import redis

from cmrelay.envelope import ORIGIN_BACKFILL, Envelope
from cmrelay.keys import Keys
from ingest.errors import IngestRejection, InvalidPayload
from ingest.events import check_size, event_type, iso_ms, prepare, with_batch_defaults
from ingest.schemas import parse_datetime

GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD_BYTES = 4 * 1024 * 1024  # one line: a whole 2,500-item batch body fits, a runaway not
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # a file that is one JSON document is read whole
DEFAULT_SOURCE = "backfill"  # envelope source: dedupe marks of backfilled events are scoped by it
ID_PREFIX = "bf-"  # messageIds the backfill derives from an event's content


class BackfillError(Exception):
    """A file cannot be read at all (missing, unreadable, not a file)."""


# --- pure parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading resumes: the byte offset (in the decompressed stream) of the next record,
    how many items of that record are already handled, and its 1-based line number."""

    offset: int = 0
    skip: int = 0
    line: int = 1


@dataclass(frozen=True, slots=True)
class Record:
    """One line (or the whole file, for a multi-line document) and where the next one starts."""

    line: int
    offset: int
    end: int
    raw: bytes
    next_line: int


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a history file: a queued-to-be event, an ignored type or a rejection."""

    outcome: Literal["event", "ignored", "rejected"]
    kind: str  # event type ("" when unknown)
    where: str  # "LINE" or "LINE item N": what a rejection names
    after: Position  # resume here once this item is handled
    event: dict[str, Any] | None = None
    reason: str = ""


def is_gzip(head: bytes) -> bool:
    """The stream starts with gzip's magic bytes."""
    return head[:2] == GZIP_MAGIC


def records(stream: IO[bytes], start: Position = Position()) -> Iterator[Record]:
    """The records of a stream positioned at `start.offset`: one per non-blank line, or one for
    the whole rest when the first line opens a multi-line JSON document (`[` or `{` alone)."""
    offset, line = start.offset, start.line
    first = True
    while True:
        raw = stream.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            return
        size = len(raw)
        if size > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            while chunk := stream.readline(MAX_RECORD_BYTES):  # skip the rest of the line
                size += len(chunk)
                if chunk.endswith(b"\n"):
                    break
            yield Record(line, offset, offset + size, b"", line + 1)  # b"": too long
        elif first and offset == 0 and raw.strip() in (b"[", b"{"):
            rest = stream.read(MAX_DOCUMENT_BYTES)
            document = raw + rest
            yield Record(line, 0, len(document), document, line + document.count(b"\n"))
            return
        elif raw.strip():
            yield Record(line, offset, offset + size, raw, line + 1)
        offset += size
        line += 1
        first = False


def record_items(raw: bytes) -> tuple[list[Any], dict[str, Any], datetime | None]:
    """(items, batch defaults, batch sentAt) of one record; InvalidPayload if it is neither an
    event, an array of events nor a batch body."""
    if not raw:
        raise InvalidPayload(f"line longer than {MAX_RECORD_BYTES} bytes")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"not valid JSON: {exc.msg}") from None
    if isinstance(document, list):
        return document, {}, None
    if isinstance(document, dict) and isinstance(document.get("batch"), list):
        sent_at = document.get("sentAt")
        try:
            moment = parse_datetime(sent_at) if sent_at is not None else None
        except ValueError:
            raise InvalidPayload("batch sentAt is not an ISO-8601 date-time") from None
        return document["batch"], document, moment
    return [document], {}, None


def content_id(item: Mapping[str, Any]) -> str:
    """A messageId derived from the event's content (sorted-key JSON), so that an event without
    one gets the same id on every run and the worker's dedupe recognises it."""
    digest = hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return ID_PREFIX + digest[:40]


def to_event(
    item: Any, defaults: Mapping[str, Any], sent_at: datetime | None
) -> tuple[str, dict[str, Any] | None]:
    """(type, the event the ingest would queue, or None for a type the relay ignores); raises
    IngestRejection with the ingest's own reason for an item the ingest would refuse.

    History comes from Segment's servers: its timestamp is already corrected (from_segment), and
    an event must carry a time of its own (timestamp, originalTimestamp or receivedAt), or the
    attribute clock would date it now and let it overwrite newer values.
    """
    kind = event_type(item)
    check_size(item)
    merged = with_batch_defaults(item, defaults)
    if not merged.get("messageId"):
        merged = {**merged, "messageId": content_id(merged)}
    received = _event_time(merged)
    event = prepare(merged, kind, received or datetime.now(UTC), sent_at, from_segment=True)
    if received is None and event is not None:  # valid otherwise: name the one missing thing
        raise InvalidPayload(
            "event has no timestamp, originalTimestamp or receivedAt",
            fields={"timestamp": ["Missing data."]},
        )
    return kind, event


def _event_time(item: Mapping[str, Any]) -> datetime | None:
    for name in ("receivedAt", "timestamp", "originalTimestamp"):
        value = item.get(name)
        if value is not None:
            try:
                return parse_datetime(value)
            except ValueError:
                continue  # the schema names the bad field; the next one may still date it
    return None


def items(stream: IO[bytes], start: Position = Position()) -> Iterator[Item]:
    """Every item of a stream from `start`, validated; bad ones become rejections, never errors."""
    for record in records(stream, start):
        done = Position(record.end, 0, record.next_line)
        try:
            batch, defaults, sent_at = record_items(record.raw)
        except IngestRejection as exc:
            yield Item("rejected", "", str(record.line), done, reason=exc.message)
            continue
        several = len(batch) != 1 or record.raw.lstrip()[:1] == b"["
        skip = start.skip if record.offset == start.offset else 0
        for index in range(skip, len(batch)):
            last = index == len(batch) - 1
            after = done if last else Position(record.offset, index + 1, record.line)
            where = f"{record.line} item {index}" if several else str(record.line)
            try:
                kind, event = to_event(batch[index], defaults, sent_at)
            except IngestRejection as exc:
                yield Item("rejected", _type_of(batch[index]), where, after, reason=_why(exc))
                continue
            outcome: Literal["event", "ignored"] = "ignored" if event is None else "event"
            yield Item(outcome, kind, where, after, event=event)
        if not batch:
            yield Item("ignored", "", str(record.line), done, reason="empty batch")


def _type_of(item: Any) -> str:
    kind = item.get("type") if isinstance(item, dict) else None
    return kind[:40] if isinstance(kind, str) else ""


def _why(exc: IngestRejection) -> str:
    if not exc.fields:
        return exc.message
    named = ", ".join(f"{name}: {_first(msgs)}" for name, msgs in exc.fields.items())
    return f"{exc.message} ({named})"


def _first(messages: Any) -> str:
    if isinstance(messages, list) and messages:
        return str(messages[0])
    if isinstance(messages, dict) and messages:
        return _first(next(iter(messages.values())))
    return str(messages)


# --- files -------------------------------------------------------------------------------------


def history_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read, in the order given; a directory gives its files (recursively, hidden
    ones left out) in file-name order, which is time order for Segment's archive names."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and not _hidden(p, path)]
            out.extend(sorted(found, key=lambda p: p.relative_to(path).as_posix()))
        elif path.is_file():
            out.append(path)
        else:
            raise BackfillError(f"{path}: no such file or directory")
    return out


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def open_history(path: Path, offset: int = 0) -> IO[bytes]:
    """The file's decompressed bytes (gzip by magic bytes), positioned at `offset`."""
    try:
        with path.open("rb") as probe:
            head = probe.read(2)
        # the caller closes the stream (a generator reads it between calls)
        opener: Callable[[Path, str], IO[bytes]] = gzip.open if is_gzip(head) else open  # type: ignore[assignment]
        stream = opener(path, "rb")
    except OSError as exc:
        raise BackfillError(f"{path}: {exc.strerror or exc}") from None
    if offset:
        stream.seek(offset)  # gzip: decompresses up to it; plain: a real seek
    return stream


def raw_position(stream: IO[bytes]) -> int:
    """How far into the file on disk a stream has read (compressed bytes for gzip): progress."""
    inner = getattr(stream, "fileobj", None)  # a GzipFile reads its file through this
    return int((inner if inner is not None else stream).tell())


def file_identity(path: Path) -> str:
    """What names a file's checkpoint: absolute path, size and mtime (a changed file is new)."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


# --- queueing ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts of one run (or one file): items read, queued, ignored, rejected, by type."""

    read: int = 0
    queued: int = 0
    ignored: int = 0
    rejected: int = 0
    skipped_files: int = 0
    bytes_read: int = 0  # bytes of the files on disk read by this run (compressed for gzip)
    to_read: int = 0  # bytes this run had left to read when it started (set on a run's total)
    by_type: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        """Fold another tally into this one."""
        self.read += other.read
        self.queued += other.queued
        self.ignored += other.ignored
        self.rejected += other.rejected
        self.skipped_files += other.skipped_files
        self.bytes_read += other.bytes_read
        self.to_read += other.to_read
        self.by_type.update(other.by_type)
        self.reasons.update(other.reasons)


Rejected = Callable[[str, str], None]  # (file:line, reason)
Progress = Callable[[Tally], None]
EventSeen = Callable[[dict[str, Any]], None]


class Backfill:
    """Reads history files into the ingest queue in batches, with a checkpoint per file."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        high_water: int,
        max_scheduled: int | None = None,
        batch_size: int = 500,
        source: str = DEFAULT_SOURCE,
        on_rejected: Rejected | None = None,
        on_progress: Progress | None = None,
        on_event: EventSeen | None = None,
        full_wait: float = 1.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.high_water = high_water
        self.max_scheduled = max_scheduled
        self.batch_size = batch_size
        self.source = source
        self.on_rejected = on_rejected or (lambda where, why: None)
        self.on_progress = on_progress or (lambda tally: None)
        self.on_event = on_event
        self.full_wait = full_wait
        self.total = Tally()
        self.waits = 0  # pushes refused at the high-water mark, then retried

    def run(
        self,
        files: Iterable[Path],
        *,
        dry_run: bool = False,
        restart: bool = False,
        limit: int | None = None,
    ) -> Tally:
        """Read every file (from its checkpoint unless restart or dry_run); `limit` stops after
        that many items (a bounded run, as an interrupted one would stop)."""
        plan = [(p, file_identity(p)) for p in files]
        saved = {} if dry_run or restart else self._checkpoints([i for _, i in plan])
        self.total.to_read = sum(left_to_read(p, saved.get(i)) for p, i in plan)
        if not dry_run:
            self._plan_checkpoints([(p, i) for p, i in plan if i not in saved])
        self.on_progress(self.total)
        for path, identity in plan:
            remaining = None if limit is None else limit - self.total.read
            if remaining is not None and remaining <= 0:
                break
            base = saved.get(identity) or {}
            if base.get("done"):
                self.total.add(Tally(skipped_files=1))
                continue
            self.total.add(self._file(path, identity, base, dry_run=dry_run, limit=remaining))
            self.on_progress(self.total)
        return self.total

    def _plan_checkpoints(self, plan: list[tuple[Path, str]]) -> None:
        """A checkpoint at the start of every file not begun yet, so that `status` (on any host)
        knows how much the run has to read; an existing one (a parallel run's) is kept."""
        pipe = self.client.pipeline(transaction=False)
        for path, identity in plan:
            start = {"path": str(path.resolve()), "offset": 0, "skip": 0, "line": 1,
                     "done": False, "size": path.stat().st_size, "bytes": 0,
                     "updated_at": iso_ms(datetime.now(UTC)),
                     **dict.fromkeys(_COUNTS, 0)}  # fmt: skip
            pipe.hsetnx(self.keys.backfill_checkpoints, identity, orjson.dumps(start))
        pipe.execute()

    def _checkpoints(self, identities: list[str]) -> dict[str, dict[str, Any]]:
        if not identities:
            return {}
        raws: list[Any] = self.client.hmget(self.keys.backfill_checkpoints, identities)
        return {i: orjson.loads(r) for i, r in zip(identities, raws, strict=True) if r}

    def _file(
        self, path: Path, identity: str, base: Mapping[str, Any], *, dry_run: bool,
        limit: int | None,
    ) -> Tally:  # fmt: skip
        start = Position(int(base.get("offset", 0)), int(base.get("skip", 0)),
                         int(base.get("line", 1)))  # fmt: skip
        run = _FileRun(identity, path, base, size=path.stat().st_size)
        tally, position, batch = run.tally, start, run.batch
        stream = run.stream = open_history(path, start.offset)
        run.started_at = int(base.get("bytes", 0))
        try:
            for item in items(stream, start):
                self._count(path, item, tally)
                if item.event is not None and not dry_run:
                    batch.append(self._envelope(item.event))
                position = item.after
                if len(batch) >= self.batch_size:
                    self._flush(run, position, done=False)
                if tally.read % 1000 == 0:
                    tally.bytes_read = max(0, raw_position(stream) - run.started_at)
                    self.on_progress(_plus(self.total, tally))
                if limit is not None and tally.read >= limit:
                    break
            else:
                tally.bytes_read = max(0, run.size - run.started_at)
                if not dry_run:
                    self._flush(run, position, done=True)
                return tally
            if not dry_run:  # stopped at the limit: checkpoint what was handled, not done
                self._flush(run, position, done=False)
        finally:
            stream.close()
        return tally

    def _count(self, path: Path, item: Item, tally: Tally) -> None:
        tally.read += 1
        tally.by_type[item.kind or "unknown"] += 1
        if item.outcome == "rejected":
            tally.rejected += 1
            tally.reasons[item.reason] += 1
            self.on_rejected(f"{path}:{item.where}", item.reason)
        elif item.outcome == "ignored":
            tally.ignored += 1
        elif item.event is not None and self.on_event is not None:
            self.on_event(item.event)

    def _envelope(self, event: dict[str, Any]) -> bytes:
        return Envelope(self.source, ORIGIN_BACKFILL, iso_ms(datetime.now(UTC)), event).to_bytes()

    def _full(self) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(self.keys.ingest_queue)
        pipe.zcard(self.keys.due)
        queued, scheduled = pipe.execute()
        full_queue = int(queued) >= self.high_water
        return full_queue or (
            self.max_scheduled is not None and int(scheduled) >= self.max_scheduled
        )

    def _flush(self, run: _FileRun, position: Position, *, done: bool) -> None:
        """Push the batch and checkpoint after it, in one MULTI/EXEC transaction.

        Waits first while the queue is at the high-water mark (as `ingest_push` refuses then;
        the check precedes the transaction, so parallel pushers overshoot by a batch at most),
        or while `max_scheduled` entities wait for delivery (what bounds Redis memory).
        Push and checkpoint land together or not at all: a kill at any point resumes exactly
        after the last batch queued, so no event is skipped and none is queued twice.
        """
        while run.batch and self._full():
            self.waits += 1
            self.on_progress(_plus(self.total, run.tally))
            time.sleep(self.full_wait)  # the workers need time to drain the queue
        queued = len(run.batch)
        run.tally.queued += queued
        now = {name: getattr(run.tally, name) for name in _COUNTS}
        checkpoint: dict[str, Any] = {
            "path": str(run.path.resolve()),
            "offset": position.offset,
            "skip": position.skip,
            "line": position.line,
            "done": done,
            "size": run.size,
            "bytes": run.size if done else raw_position(run.stream) if run.stream else 0,
            "updated_at": iso_ms(datetime.now(UTC)),
        }
        checkpoint.update({n: int(run.base.get(n, 0)) + now[n] for n in _COUNTS})
        pipe = self.client.pipeline(transaction=True)
        for start in range(0, queued, _PUSH_CHUNK):
            pipe.lpush(self.keys.ingest_queue, *run.batch[start : start + _PUSH_CHUNK])
        pipe.hset(self.keys.backfill_checkpoints, run.identity, orjson.dumps(checkpoint))
        for name in _COUNTS:
            if now[name] != run.flushed[name]:
                pipe.hincrby(self.keys.backfill_counters, name, now[name] - run.flushed[name])
        pipe.execute()
        run.batch.clear()
        run.flushed = now


_COUNTS = ("read", "queued", "ignored", "rejected")
_PUSH_CHUNK = 1000  # envelopes per LPUSH, as ingest_push does


def left_to_read(path: Path, checkpoint: Mapping[str, Any] | None) -> int:
    """Bytes of a file a run has still to read, by its checkpoint (all of it without one)."""
    if checkpoint is None:
        return path.stat().st_size
    if checkpoint.get("done"):
        return 0
    return max(0, path.stat().st_size - int(checkpoint.get("bytes", 0)))


@dataclass
class _FileRun:
    """One file's reading in progress: its checkpoint name, counts saved before this run, the
    batch not yet pushed and the counts already added to the shared counters."""

    identity: str
    path: Path
    base: Mapping[str, Any]
    size: int = 0
    stream: IO[bytes] | None = None
    started_at: int = 0  # bytes of the file on disk already read by earlier runs
    tally: Tally = field(default_factory=Tally)
    batch: list[bytes] = field(default_factory=list)
    flushed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))


def _plus(total: Tally, current: Tally) -> Tally:
    both = Tally()
    both.add(total)
    both.add(current)
    return both


def load_checkpoint(client: redis.Redis, keys: Keys, identity: str) -> dict[str, Any] | None:
    """The saved checkpoint of one file identity, or None."""
    raw = client.hget(keys.backfill_checkpoints, identity)
    if not isinstance(raw, bytes | str):
        return None
    data: dict[str, Any] = orjson.loads(raw)
    return data
