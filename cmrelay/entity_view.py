"""What the relay holds for one customer entity, read from Redis in one round trip (pure I/O,
no ChartMogul call): pending events, schedule, lease, retry state, what ChartMogul was last
confirmed to hold, and its dead letters."""

from __future__ import annotations

import json
from typing import Any

import orjson
import redis

from cmrelay.dlq.store import DeadLetterQueue, DlqFilter
from cmrelay.envelope import Envelope
from cmrelay.keys import Keys, entity_external_id

PENDING_SHOWN = 20  # the newest pending events listed (all are counted)


def entity_view(client: redis.Redis, keys: Keys, entity: str, now: float) -> dict[str, Any]:
    """The entity's state as JSON-ready data."""
    external_id = entity_external_id(entity)
    pipe = client.pipeline(transaction=False)
    pipe.llen(keys.mailbox(entity))
    pipe.lrange(keys.mailbox(entity), -PENDING_SHOWN, -1)
    pipe.zscore(keys.due, entity)
    pipe.pttl(keys.lease(entity))
    pipe.hgetall(keys.retry_state(entity))
    pipe.get(keys.confirmed(external_id))
    pipe.pttl(keys.confirmed(external_id))
    pipe.hget(keys.uuid_cache("customer"), external_id)
    pipe.hgetall(keys.attr_clock(entity))
    pending, newest, due, lease_ms, retry, held, held_ms, uuid, clock = pipe.execute()
    dead = DeadLetterQueue(client, keys, retention=0).list(DlqFilter(entity=entity, limit=20))
    return {
        "entity": entity,
        "pending_events": int(pending),
        "pending": [_pending(raw) for raw in newest],
        "due_in_seconds": None if due is None else round(float(due) - now, 3),
        "leased": lease_ms > 0,
        "lease_ms_left": max(0, int(lease_ms)),
        "retry": {
            _text(k): _text(v) for k, v in retry.items() if not _text(k).startswith("attempt:")
        },
        "chartmogul_uuid": _text(uuid) if uuid else None,
        "confirmed_state": orjson.loads(held) if held else None,
        "confirmed_state_ttl_seconds": max(0, int(held_ms) // 1000) if held else None,
        "attribute_clock": {_text(k): _text(v) for k, v in sorted(clock.items())},
        "dead_letters": [
            {
                "id": e.id,
                "reason": e.reason,
                "status": e.status,
                "last_error": e.last_error,
                "events": len(e.message_ids),
            }
            for e in dead
        ],
    }


def _pending(raw: bytes) -> dict[str, Any]:
    try:
        env = Envelope.from_bytes(raw)
    except ValueError:
        return {"unreadable": True}
    event = env.event
    return {"message_id": env.message_id, "type": event.get("type"),
            "timestamp": event.get("timestamp"), "received_at": env.received_at}  # fmt: skip


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def render_entity(view: dict[str, Any]) -> str:
    """A readable summary (control characters in event data are escaped by repr)."""
    lines = [f"{view['entity']}  ChartMogul uuid: {view['chartmogul_uuid'] or '(not known)'}"]
    due = view["due_in_seconds"]
    lines.append(f"pending events: {view['pending_events']}"
                 + ("" if due is None else f", due in {due:.1f} s"))  # fmt: skip
    for event in view["pending"]:
        lines.append(
            f"  {event.get('message_id')!r} {event.get('type')} at {event.get('timestamp')}"
        )
    if view["leased"]:
        lines.append(f"being delivered now (lease {view['lease_ms_left']} ms left)")
    if view["retry"]:
        lines.append(f"retrying: attempt {view['retry'].get('attempts')}, last error "
                     f"{view['retry'].get('last_error')!r}")  # fmt: skip
    held = view["confirmed_state"]
    if held is None:
        lines.append("ChartMogul's state: not held (the next delivery reads it)")
    else:
        customer = held["c"]
        values = json.dumps({**customer["s"], **customer["c"]}, ensure_ascii=True)
        ttl = view["confirmed_state_ttl_seconds"]
        lines.append(f"ChartMogul confirmed holding (trusted {ttl} s more): {values}")
        if customer["r"]:
            lines.append(f"  not kept by ChartMogul: {sorted(customer['r'])}")
        lines.append(f"  contacts known: {len(held['k'])}"
                     + ("" if held["all"] else " (not listed yet)"))  # fmt: skip
    for dead in view["dead_letters"]:
        lines.append(f"dead letter {dead['id']} [{dead['status']}] {dead['reason']}: "
                     f"{dead['last_error']!r} ({dead['events']} events)")  # fmt: skip
    return "\n".join(lines) + "\n"
