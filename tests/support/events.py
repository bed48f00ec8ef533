"""Envelopes and dead letters as the product writes them, for tests to queue and inspect."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cmrelay.dlq.entry import REASON_PERMANENT, attempt_record, new_entry
from cmrelay.dlq.store import DeadLetterQueue
from cmrelay.envelope import Envelope

_seq = itertools.count()


def envelope(
    kind: str = "identify",
    *,
    message_id: str | None = None,
    user_id: str | None = "u1",
    group_id: str | None = None,
    traits: dict[str, Any] | None = None,
    timestamp: str | None = None,
    source: str = "wk_test",
) -> bytes:
    """One queued envelope as the ingest writes it."""
    event: dict[str, Any] = {
        "type": kind,
        "messageId": message_id or f"m{next(_seq)}-{uuid.uuid4().hex[:6]}",
        # Default: now, so events made one after another are ordered like real ones.
        "timestamp": timestamp or datetime.now(UTC).isoformat(timespec="microseconds"),
        "traits": traits or {},
    }
    if user_id is not None:
        event["userId"] = user_id
    if group_id is not None:
        event["groupId"] = group_id
    return Envelope(source, "tracking-api", "2026-01-01T00:00:00.000Z", event).to_bytes()


def dead_letter(
    dlq: DeadLetterQueue,
    user: str,
    reason: str = REASON_PERMANENT,
    *,
    status: int | None = 422,
    error: str = "Unprocessable: bad country",
    age: float = 0.0,
    traits: dict[str, Any] | None = None,
) -> str:
    """Store, through the real DLQ API, an entry for customer:<user> with two recorded attempts."""
    at = time.time() - age
    entry = new_entry(
        entity=f"customer:{user}", reason=reason, error_class="PermanentDeliveryError",
        last_error=error, attempts=2, first_attempt_at=at - 1,
        envelopes=[envelope(user_id=user, message_id=f"msg-{user}", traits=traits)],
        planned_operations=[{"op": "upsert_customer", "entity": f"customer:{user}"}],
        now=at, status_code=status, last_response='{"errors":"Country is invalid"}',
        history=[attempt_record(at - 1, "RetryableDeliveryError", 503, "unavailable"),
                 attempt_record(at, "PermanentDeliveryError", status, error)],
    )  # fmt: skip
    return dlq.add(entry)
