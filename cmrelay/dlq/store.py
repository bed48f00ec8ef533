"""The dead-letter queue in Redis: add, get, list, replay, purge and stats."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import redis

from cmrelay.dlq.entry import STATUS_DEAD, DlqEntry
from cmrelay.dlq.scan import CHUNK_MAX, stats_rows, walk_index
from cmrelay.dlq.stats import summarize
from cmrelay.envelope import Envelope
from cmrelay.errors import InvalidQueryError
from cmrelay.keys import Keys, entity_external_id
from cmrelay.lua import Scripts
from cmrelay.redis_conn import connect
from cmrelay.settings import Settings

MIN_PREFIX = 6  # shortest id prefix accepted: short enough to type, long enough to be rare
ID_LENGTH = 32


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


@dataclass(frozen=True)
class Tally:
    """How many entries match a filter, and how many of those are still dead."""

    matching: int
    dead: int

    @property
    def replayed(self) -> int:
        """Matching entries already replayed."""
        return self.matching - self.dead


class Match(NamedTuple):
    """An entry that matches, by the index alone (entry None) or with its body read."""

    id: str
    status: str
    entry: DlqEntry | None


def _needs_body(f: DlqFilter) -> bool:
    """True when the filter looks inside entries, not only at the index and the two hashes."""
    return any(v is not None for v in (f.entity, f.text, f.status_code, f.error_class))


@dataclass
class DeadLetterQueue:
    """Python API over the stored dead letters (the ops CLI/admin API sit on top of this)."""

    client: redis.Redis
    keys: Keys
    retention: float
    scripts: Scripts = field(init=False)

    def __post_init__(self) -> None:
        self.scripts = Scripts(self.client, self.keys)

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
        """One entry by id or by a unique prefix of at least 6 characters (as shown in lists);
        None when unknown or past retention; InvalidQueryError for an ambiguous prefix."""
        raw: Any = self.client.get(self.keys.dlq_entry(entry_id))
        if raw is None and MIN_PREFIX <= len(entry_id) < ID_LENGTH and entry_id.isalnum():
            found = self.resolve_prefix(entry_id)
            if found is None:
                return None
            entry_id, raw = found, self.client.get(self.keys.dlq_entry(found))
        if raw is None:
            return None
        status: Any = self.client.hget(self.keys.dlq_status, entry_id)
        return DlqEntry.from_json(raw, status.decode() if status else STATUS_DEAD)

    def resolve_prefix(self, prefix: str) -> str | None:
        """The one entry id starting with `prefix`, None if none does."""
        matches: list[str] = []
        for member, _ in self.client.zscan_iter(self.keys.dlq_index, match=f"{prefix}*"):
            matches.append(member.decode() if isinstance(member, bytes) else str(member))
            if len(matches) > 1:
                raise InvalidQueryError(f"id prefix {prefix!r} is ambiguous: give more characters")
        return matches[0] if matches else None

    def list(self, filters: DlqFilter | None = None, offset: int = 0) -> builtins.list[DlqEntry]:
        """Entries matching the filter, newest first, after the first `offset` matches; walks the
        index only until `offset + limit` match and reads only the bodies it must."""
        f = filters or DlqFilter()
        page: builtins.list[Match] = []
        for chunk in self._matching(f, offset + f.limit):
            skipped = min(offset, len(chunk))
            offset -= skipped
            page += chunk[skipped:]
            if len(page) >= f.limit:
                break
        page = page[: f.limit]
        loaded = {e.id: e for e in self._load([m.id for m in page if m.entry is None])}
        return [e for e in (m.entry or loaded.get(m.id) for m in page) if e is not None]

    def count(self, filters: DlqFilter | None = None) -> Tally:
        """How many entries match (whatever `limit`): from the index and the status and reason
        hashes alone unless the filter looks inside entries (entity, text, HTTP status, class)."""
        f = filters or DlqFilter()
        if f == DlqFilter(limit=f.limit):  # everything: one read of the status hash, no walk
            statuses: Any = self.client.hvals(self.keys.dlq_status)
            return Tally(len(statuses), statuses.count(STATUS_DEAD.encode()))
        matching = dead = 0
        for chunk in self._matching(f, CHUNK_MAX):
            matching += len(chunk)
            dead += sum(1 for m in chunk if m.status == STATUS_DEAD)
        return Tally(matching, dead)

    def page(
        self, filters: DlqFilter | None = None, offset: int = 0
    ) -> tuple[builtins.list[DlqEntry], Tally]:
        """`list(filters, offset)` and `count(filters)` together, in one walk of the index when
        the filter must read bodies anyway (holding only the page's entries)."""
        f = filters or DlqFilter()
        if not _needs_body(f):  # the count reads ids and hashes: two walks cost less than one
            return self.list(f, offset), self.count(f)
        window: builtins.list[DlqEntry] = []
        matching = dead = 0
        for chunk in self._matching(f, CHUNK_MAX):
            for m in chunk:
                if m.entry is not None and offset <= matching < offset + f.limit:
                    window.append(m.entry)
                matching += 1
                dead += m.status == STATUS_DEAD
        return window, Tally(matching, dead)

    def _matching(self, f: DlqFilter, first: int) -> Iterator[builtins.list[Match]]:
        """Matches newest first, chunk by chunk. Bodies are read only for filters that look
        inside entries (or entries with no reason recorded); otherwise status and reason come
        from their hashes, so counting 100k entries moves ids, not 200 MB of JSON."""
        for ids in walk_index(self.client, self.keys.dlq_index, f.until, f.since, first):
            if _needs_body(f):
                yield [Match(e.id, e.status, e) for e in self._load(ids) if _matches(e, f)]
                continue
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(self.keys.dlq_status, ids)
            if f.reason is not None:
                pipe.hmget(self.keys.dlq_reasons, ids)
            statuses, *found = pipe.execute()
            reasons = found[0] if found else [None] * len(ids)
            chunk: builtins.list[Match] = []
            unknown: builtins.list[str] = []  # stored without a reason field: read the body
            for entry_id, raw_status, raw_reason in zip(ids, statuses, reasons, strict=True):
                status = raw_status.decode() if raw_status else STATUS_DEAD
                if f.status is not None and status != f.status:
                    continue
                if f.reason is not None and raw_reason is None:
                    unknown.append(entry_id)
                elif f.reason is None or raw_reason.decode() == f.reason:
                    chunk.append(Match(entry_id, status, None))
            if unknown:
                chunk += [Match(e.id, e.status, e) for e in self._load(unknown) if _matches(e, f)]
                order = {i: n for n, i in enumerate(ids)}
                chunk.sort(key=lambda m: order[m.id])
            yield chunk

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
            if self.scripts.dlq_replay(entry_id, flagged):
                done.append(entry_id)
                # A replay re-reads ChartMogul: whatever failed may have left it half-written.
                self.client.delete(self.keys.confirmed(entity_external_id(entry.entity)))
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
        pipe.hdel(self.keys.dlq_reasons, *doomed)
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
