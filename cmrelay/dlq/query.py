"""What the DLQ CLI and the admin API share: filters from text, picking entries, replay, views."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from cmrelay.dlq.entry import (
    REASON_EXPIRED,
    REASON_PARTIAL,
    REASON_PERMANENT,
    STATUS_DEAD,
    STATUS_REPLAYED,
    DlqEntry,
)
from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.errors import InvalidQueryError, PermanentDeliveryError, RetryableDeliveryError
from cmrelay.keys import ENTITY_PREFIX
from cmrelay.masking import Masker
from cmrelay.settings import Settings

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_SELECTION = 100_000  # replay/purge by filter: bounded so one request cannot load all memory
FILTER_NAMES = ("reason", "status", "entity", "since", "until", "text", "error_class", "limit")


# The known values of the filters, for the CLI's checks and the admin page's choices alike.
REASONS = (REASON_PERMANENT, REASON_EXPIRED, REASON_PARTIAL)
STATUSES = (STATUS_DEAD, STATUS_REPLAYED)
# What the worker dead-letters with ("PartialDelivery": a partial delivery without an error).
# Any other exception is recorded under its class name, so this set is a floor, not a check.
ERROR_CLASSES = (
    PermanentDeliveryError.__name__,
    RetryableDeliveryError.__name__,
    "PartialDelivery",
)
MAX_OFFSET = 10_000_000  # far past any DLQ_RETENTION's worth of entries


def parse_duration(text: str) -> float:
    """Seconds in "90s", "30m", "2h", "7d" or "1w"."""
    match = _RELATIVE.match(text)
    if not match:
        raise InvalidQueryError(f"not a duration like 30m, 2h or 7d: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_when(text: str, now: float) -> float:
    """Epoch seconds for an ISO-8601 date/time (UTC if no zone) or a relative age ("2h" ago)."""
    if _RELATIVE.match(text):
        return now - parse_duration(text)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQueryError(f"not an ISO time or an age like 2h: {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def build_filter(params: Mapping[str, str | None], now: float, limit: int = 100) -> DlqFilter:
    """A DlqFilter from text parameters; `status` is an entry status or an HTTP status code."""
    unknown = sorted(set(params) - set(FILTER_NAMES))
    if unknown:
        raise InvalidQueryError(f"unknown filter {unknown[0]!r}")
    p = {k: v.strip() for k, v in params.items() if v is not None and v.strip()}
    raw_status = p.get("status")
    status_code = int(raw_status) if raw_status and _is_number(raw_status) else None
    status = None if status_code is not None else raw_status
    if status is not None and status not in STATUSES:
        raise InvalidQueryError(f"status must be dead, replayed or an HTTP code, not {status!r}")
    reason = p.get("reason")
    if reason is not None and reason not in REASONS:
        known = ", ".join(repr(r) for r in REASONS)
        raise InvalidQueryError(f"reason must be one of {known}, not {reason!r}")
    entity = p.get("entity")
    if entity is not None and not entity.startswith(ENTITY_PREFIX):
        raise InvalidQueryError(f"entity looks like {ENTITY_PREFIX}<external id>, not {entity!r}")
    if "limit" in p:
        if not _is_number(p["limit"]) or not 0 < int(p["limit"]) <= MAX_SELECTION:
            raise InvalidQueryError(f"limit must be a whole number from 1 to {MAX_SELECTION}")
        limit = int(p["limit"])
    return DlqFilter(
        reason=reason,
        status=status,
        entity=entity,
        since=parse_when(p["since"], now) if "since" in p else None,
        until=parse_when(p["until"], now) if "until" in p else None,
        text=p.get("text"),
        status_code=status_code,
        error_class=p.get("error_class"),
        limit=limit,
    )


def parse_offset(text: str | None) -> int:
    """How many matches a page skips: a whole number from 0 ("" or None: 0)."""
    raw = (text or "").strip()
    if not raw:
        return 0
    if not _is_number(raw) or int(raw) > MAX_OFFSET:
        raise InvalidQueryError(f"offset must be a whole number from 0 to {MAX_OFFSET}")
    return int(raw)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 10


def is_empty(f: DlqFilter) -> bool:
    """True when the filter selects everything (so purge/replay must be asked for explicitly)."""
    return f == DlqFilter(limit=f.limit)


@dataclass
class Selection:
    """The entries an operation applies to, and the requested ids that do not exist."""

    entries: list[DlqEntry]
    missing: list[str] = field(default_factory=list)


def select(
    dlq: DeadLetterQueue,
    ids: Sequence[str] = (),
    flt: DlqFilter | None = None,
    older_than: float | None = None,
    now: float = 0.0,
) -> Selection:
    """Entries by id (in the order given) or by filter, optionally only those older than this."""
    if ids:
        found = {i: dlq.get(i) for i in dict.fromkeys(ids)}
        out = Selection([e for e in found.values() if e is not None])
        out.missing = [i for i, e in found.items() if e is None]
        if flt is not None and not is_empty(flt):
            keep = {m.id for m in dlq.list(replace(flt, limit=MAX_SELECTION))}
            out.entries = [e for e in out.entries if e.id in keep]
    else:
        out = Selection(dlq.list(flt or DlqFilter(limit=MAX_SELECTION)))
    if older_than is not None:
        out.entries = [e for e in out.entries if e.dead_lettered_at <= now - older_than]
    return out


@dataclass
class ReplayReport:
    """What a replay did (or, on a dry run, would do)."""

    replayed: list[str]
    skipped: list[str]  # already replayed, so not queued again
    missing: list[str]
    events: int
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (admin API, `--json`)."""
        return {
            "dry_run": self.dry_run,
            "replayed": self.replayed,
            "skipped": self.skipped,
            "missing": self.missing,
            "events": self.events,
        }


def replay(
    dlq: DeadLetterQueue,
    selection: Selection,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 50,
) -> ReplayReport:
    """Re-queue the selected dead entries (each at most once, by dlq.replay's status flip)."""
    dead = [e for e in selection.entries if e.status == STATUS_DEAD]
    skipped = [e.id for e in selection.entries if e.status != STATUS_DEAD]
    if dry_run:
        events = sum(len(e.events) for e in dead)
        return ReplayReport([e.id for e in dead], skipped, selection.missing, events, True)
    done: set[str] = set()
    for start in range(0, len(dead), chunk):
        done.update(dlq.replay(e.id for e in dead[start : start + chunk]))
        if progress is not None:
            progress(min(start + chunk, len(dead)), len(dead))
    replayed = [e for e in dead if e.id in done]
    skipped += [e.id for e in dead if e.id not in done]  # replayed meanwhile by someone else
    events = sum(len(e.events) for e in replayed)
    return ReplayReport([e.id for e in replayed], skipped, selection.missing, events, False)


def iso(epoch: float) -> str:
    """UTC ISO-8601 with seconds, as every DLQ view shows times."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(entry: DlqEntry, settings: Settings) -> dict[str, Any]:
    """One entry as a list row / JSON Lines record (names scripts rely on; see the README)."""
    row: dict[str, Any] = Masker.from_settings(settings).tree(
        {
            "id": entry.id,
            "reason": entry.reason,
            "status": entry.status,
            "status_code": entry.status_code,
            "error_class": entry.error_class,
            "entity": entry.entity,
            "message_ids": list(entry.message_ids),
            "attempts": entry.attempts,
            "last_error": entry.last_error,
            "dead_lettered_at": iso(entry.dead_lettered_at),
            "first_attempt_at": iso(entry.first_attempt_at),
            "events": len(entry.events),
        }
    )
    return row


def detail(entry: DlqEntry, settings: Settings) -> dict[str, Any]:
    """Everything about one entry: original events, planned operations, attempts, last response."""
    out = summary(entry, settings)
    out["events"] = [_decode(raw) for raw in entry.events]
    out["planned_operations"] = list(entry.planned_operations)
    out["history"] = [{**a, "at": iso(float(a.get("at", 0)))} for a in entry.history]
    out["last_response"] = entry.last_response
    view: dict[str, Any] = Masker.from_settings(settings).tree(out)
    return view


def _decode(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def ids_from(values: Iterable[Any]) -> list[str]:
    """Entry ids from untrusted input: strings only, stripped, no empties."""
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidQueryError("ids must be non-empty strings")
        out.append(value.strip())
    return out
