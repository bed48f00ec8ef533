"""The dead-letter queue: durable entries in Redis with list, get, replay, purge and stats."""

from __future__ import annotations

import builtins
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import orjson
import redis

from cmrelay.envelope import Envelope
from cmrelay.keys import Keys
from cmrelay.redis_conn import connect
from config.settings import Settings
from worker.dlq_scan import stats_rows, walk_index
from worker.dlq_stats import summarize
from worker.scripts import Scripts

REASON_PERMANENT = "permanent"
REASON_EXPIRED = "retry window expired"
REASON_PARTIAL = "partial"

STATUS_DEAD = "dead"
STATUS_REPLAYED = "replayed"

_BEARER = re.compile(r"(?i)(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")


@dataclass(frozen=True)
class DlqEntry:
    """One dead letter: what failed, why, and everything needed to replay it."""

    id: str
    entity: str
    reason: str
    error_class: str
    last_error: str
    attempts: int
    first_attempt_at: float
    last_attempt_at: float
    dead_lettered_at: float
    message_ids: tuple[str, ...]
    events: tuple[str, ...]  # the original envelopes, as queued (JSON text)
    planned_operations: tuple[Mapping[str, Any], ...] = ()
    status_code: int | None = None  # HTTP status of the last response, None for no response
    last_response: str = ""  # excerpt of the last response body, secrets masked
    history: tuple[Mapping[str, Any], ...] = ()  # every attempt, oldest first (attempt_record)
    status: str = STATUS_DEAD

    def to_json(self) -> bytes:
        """Stored form; status lives apart (dlq_status) so that a replay can flip it atomically."""
        data = asdict(self)
        del data["status"]
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes, status: str) -> DlqEntry:
        """Parse a stored entry."""
        data = orjson.loads(raw)
        # Entries outlive releases (DLQ_RETENTION): ignore fields a newer writer added.
        data = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        data["message_ids"] = tuple(data["message_ids"])
        data["events"] = tuple(data["events"])
        data["planned_operations"] = tuple(data.get("planned_operations", ()))
        data["history"] = tuple(data.get("history", ()))
        return cls(status=status, **data)


_FIELD_NAMES = frozenset(f.name for f in fields(DlqEntry)) - {"status"}
HISTORY_ERROR_CHARS = 500  # per attempt; the full last error is kept in last_error


def attempt_record(
    at: float, error_class: str, status_code: int | None, error: str
) -> dict[str, Any]:
    """One failed attempt as the DLQ keeps it (the error already masked)."""
    return {
        "at": round(at, 3),
        "error_class": error_class,
        "status_code": status_code,
        "error": error[:HISTORY_ERROR_CHARS],
    }


def history_from_retry(retry: Mapping[str, str]) -> list[dict[str, Any]]:
    """The attempts recorded in an entity's retry state (fields "attempt:<n>"), oldest first."""
    numbered = []
    for name, value in retry.items():
        prefix, _, number = name.partition(":")
        if prefix == "attempt" and number.isdigit():
            try:
                numbered.append((int(number), orjson.loads(value)))
            except orjson.JSONDecodeError:
                continue
    return [record for _, record in sorted(numbered, key=lambda pair: pair[0])]


def redact(text: str, settings: Settings) -> str:
    """The text with every configured secret and auth header value masked (no cut)."""
    secrets_ = [settings.chartmogul_api_key, settings.chartmogul_webhook_url]
    secrets_ += [*settings.segment_write_keys, settings.segment_shared_secret, settings.admin_token]
    for secret in secrets_:
        if secret:
            text = text.replace(secret.reveal(), "***")
    return _BEARER.sub(r"\1 ***", text)


def mask_secrets(text: str, settings: Settings) -> str:
    """Cut an error text to an excerpt with every configured secret and auth header masked."""
    return redact(text, settings)[:2000]


def new_entry(
    *,
    entity: str,
    reason: str,
    error_class: str,
    last_error: str,
    attempts: int,
    first_attempt_at: float,
    envelopes: Sequence[bytes],
    planned_operations: Iterable[Mapping[str, Any]] = (),
    now: float | None = None,
    status_code: int | None = None,
    last_response: str = "",
    history: Iterable[Mapping[str, Any]] = (),
) -> DlqEntry:
    """Build an entry (not yet stored) from the envelopes as they sat in the mailbox."""
    now = time.time() if now is None else now
    events = tuple(raw.decode() for raw in envelopes)
    ids = tuple(Envelope.from_bytes(raw).message_id for raw in envelopes)
    return DlqEntry(
        id=uuid.uuid4().hex,
        entity=entity,
        reason=reason,
        error_class=error_class,
        last_error=last_error,
        attempts=attempts,
        first_attempt_at=first_attempt_at,
        last_attempt_at=now,
        dead_lettered_at=now,
        message_ids=ids,
        events=events,
        planned_operations=tuple(planned_operations),
        status_code=status_code,
        last_response=last_response,
        history=tuple(history),
    )


@dataclass(frozen=True)
class DlqFilter:
    """What `DeadLetterQueue.list` returns: all given criteria must match."""

    reason: str | None = None
    status: str | None = None
    entity: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None  # case-insensitive substring of the error, entity or events
    status_code: int | None = None  # HTTP status of the last response
    error_class: str | None = None
    limit: int = 100


@dataclass
class DeadLetterQueue:
    """Python API over the stored dead letters (the ops CLI/admin API sit on top of this)."""

    client: redis.Redis
    keys: Keys
    retention: float
    scripts: Scripts = field(init=False)

    def __post_init__(self) -> None:
        self.scripts = Scripts(self.client)

    @classmethod
    def from_settings(
        cls, settings: Settings, client: redis.Redis | None = None
    ) -> DeadLetterQueue:
        """The DLQ of the relay these settings describe."""
        client = client or connect(settings.redis_url)
        return cls(client, Keys(settings.key_prefix), settings.dlq_retention)

    def add(self, entry: DlqEntry) -> str:
        """Store an entry (status dead) and return its id."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.dlq_entry(entry.id), entry.to_json(), ex=int(self.retention))
        pipe.hset(self.keys.dlq_status, entry.id, STATUS_DEAD)
        pipe.hset(self.keys.dlq_reasons, entry.id, entry.reason)
        pipe.zadd(self.keys.dlq_index, {entry.id: entry.dead_lettered_at})
        pipe.execute()
        return entry.id

    def get(self, entry_id: str) -> DlqEntry | None:
        """One entry, or None when unknown or past retention."""
        raw: Any = self.client.get(self.keys.dlq_entry(entry_id))
        if raw is None:
            return None
        status: Any = self.client.hget(self.keys.dlq_status, entry_id)
        return DlqEntry.from_json(raw, status.decode() if status else STATUS_DEAD)

    def list(self, filters: DlqFilter | None = None) -> builtins.list[DlqEntry]:
        """Entries matching the filter, newest first; reads the index only until `limit` match."""
        f = filters or DlqFilter()
        out: builtins.list[DlqEntry] = []
        for chunk in walk_index(self.client, self.keys.dlq_index, f.until, f.since, f.limit):
            for entry in self._load(chunk):
                if _matches(entry, f):
                    out.append(entry)
                    if len(out) >= f.limit:
                        return out
        return out

    def replay(self, ids: Iterable[str]) -> builtins.list[str]:
        """Re-queue each entry's envelopes past dedupe, once; returns the ids replayed now."""
        done: list[str] = []
        for entry_id in ids:
            entry = self.get(entry_id)
            if entry is None:
                continue
            flagged = [
                replace(Envelope.from_bytes(e), replay=True).to_bytes() for e in entry.events
            ]
            keys = [self.keys.dlq_status, self.keys.ingest_queue]
            if self.scripts.run("dlq_replay", keys, [entry_id, *flagged]) == 1:
                done.append(entry_id)
        return done

    def purge(self, ids: Iterable[str] = (), older_than: float | None = None) -> int:
        """Delete the given entries and/or those dead-lettered more than older_than s ago."""
        doomed = set(ids)
        if older_than is not None:
            cutoff = time.time() - older_than
            old: Any = self.client.zrangebyscore(self.keys.dlq_index, "-inf", cutoff)
            doomed |= {i.decode() for i in old}
        if not doomed:
            return 0
        pipe = self.client.pipeline(transaction=True)
        for entry_id in doomed:
            pipe.delete(self.keys.dlq_entry(entry_id))
        pipe.hdel(self.keys.dlq_status, *doomed)
        pipe.zrem(self.keys.dlq_index, *doomed)
        return int(pipe.execute()[-1])

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """Counts by reason, status, HTTP status, error class and age; hourly counts (24 h)."""
        self.purge(older_than=self.retention)
        k = self.keys
        rows = stats_rows(self.client, k.dlq_index, k.dlq_entry, k.dlq_status, STATUS_DEAD)
        return summarize(builtins.list(rows), time.time() if now is None else now)

    def _load(self, ids: builtins.list[str]) -> builtins.list[DlqEntry]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        pipe.mget([self.keys.dlq_entry(i) for i in ids])
        pipe.hmget(self.keys.dlq_status, ids)
        raws, statuses = pipe.execute()
        out = []
        for raw, status in zip(raws, statuses, strict=True):
            if raw is not None:
                out.append(DlqEntry.from_json(raw, status.decode() if status else STATUS_DEAD))
        return out


def _matches(entry: DlqEntry, f: DlqFilter) -> bool:
    exact = (
        (f.reason, entry.reason),
        (f.status, entry.status),
        (f.entity, entry.entity),
        (f.status_code, entry.status_code),
        (f.error_class, entry.error_class),
    )
    if any(wanted is not None and wanted != actual for wanted, actual in exact):
        return False
    if f.text:
        needle = f.text.lower()
        haystack = " ".join([entry.last_error, entry.entity, *entry.events]).lower()
        return needle in haystack
    return True
