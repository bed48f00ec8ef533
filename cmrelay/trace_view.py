"""`cmrelay trace`: one event's life in the relay, from its trail and the DLQ (read-only)."""

from __future__ import annotations

from typing import Any

import orjson
import redis

from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.keys import Keys


def trace_view(client: redis.Redis, keys: Keys, message_id: str) -> dict[str, Any] | None:
    """The event's trail and the dead letters holding it; None when the relay has no trace."""
    raw: Any = client.hgetall(keys.trace(message_id))
    trail = {k.decode(): v.decode() for k, v in raw.items()}
    dlq = DeadLetterQueue(client, keys, retention=0)
    dead = [e for e in dlq.list(DlqFilter(text=message_id, limit=20))
            if message_id in e.message_ids]  # fmt: skip
    if not trail and not dead:
        return None
    info = orjson.loads(trail.pop("info")) if "info" in trail else {}
    return {
        "message_id": message_id,
        **info,
        "state": trail.get("state"),
        "entity": trail.get("entity"),
        "accepted_at": _float(trail.get("accepted_at")),
        "outcome_at": _float(trail.get("outcome_at")),
        "duplicates": int(trail.get("duplicates", 0)),
        "dead_letters": [
            {"id": e.id, "reason": e.reason, "status": e.status, "last_error": e.last_error}
            for e in dead
        ],
    }


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)
