"""`cmrelay trace`: one event's life in the relay, from its trail and the DLQ (read-only)."""

from __future__ import annotations

from datetime import UTC, datetime
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


def render_trace(view: dict[str, Any]) -> str:
    """A readable trail; event data is repr-escaped."""
    lines = [f"event {view['message_id']!r} ({view.get('type')}, source {view.get('source')!r}, "
             f"via {view.get('origin')})"]  # fmt: skip
    if view.get("received_at"):
        lines.append(f"  acknowledged by the ingest at {view['received_at']}")
    if view["accepted_at"] is not None:
        lines.append(f"  taken by a worker at {_when(view['accepted_at'])}"
                     + (f", for {view['entity']}" if view.get("entity") else ""))  # fmt: skip
    if view["duplicates"]:
        lines.append(f"  seen again {view['duplicates']} time(s) with the same messageId (dropped)")
    state = view["state"]
    at = f" at {_when(view['outcome_at'])}" if view["outcome_at"] is not None else ""
    lines.append(f"  now: {state}{at}" + _meaning(state))
    for dead in view["dead_letters"]:
        lines.append(f"  dead letter {dead['id']} [{dead['status']}] {dead['reason']}: "
                     f"{dead['last_error']!r}")  # fmt: skip
    return "\n".join(lines) + "\n"


_MEANINGS = {
    "accepted": " (waiting in its customer's mailbox for delivery)",
    "delivered": " (ChartMogul has it)",
    "unchanged": " (ChartMogul already held everything it says: no call needed)",
    "retrying": " (ChartMogul failed; backing off, see `cmrelay entity`)",
    "dead_lettered": " (see the dead letter below; `cmrelay dlq replay`)",
    "waiting_for_group": " (COMPANY_CREATION=group: held until a Group call links the user)",
}


def _meaning(state: str | None) -> str:
    return _MEANINGS.get(state or "", "")


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
