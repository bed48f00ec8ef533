"""One dead letter: what failed, why, every attempt, and the original envelopes to replay."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

from cmrelay.envelope import Envelope

REASON_PERMANENT = "permanent"
REASON_EXPIRED = "retry window expired"
REASON_PARTIAL = "partial"

STATUS_DEAD = "dead"
STATUS_REPLAYED = "replayed"


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
