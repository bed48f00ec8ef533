"""Pure functions that turn one received item into the Segment event the queue carries.

Validation (schemas.py), batch defaults, messageId assignment and Segment's clock-skew
correction live here, with no I/O, so each rule is testable on its own.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from marshmallow import ValidationError

from ingest.errors import InvalidPayload, PayloadTooLarge
from ingest.fastload import compile_loader
from ingest.schemas import IGNORED_TYPES, SCHEMAS

MAX_EVENT_BYTES = 32 * 1024  # Segment: 32 KB per event, in a batch or on its own.
MAX_BATCH_ITEMS = 2500  # Segment: at most 2,500 events per batch.
# Levels of objects/arrays in one event, the event itself being level 1. Real traits are a few
# levels deep; the queue and DLQ wrap an event in a few more, and orjson cannot write past 254.
MAX_DEPTH = 64
# Numbers: JSON has no integer size, orjson parses up to 64 bits exactly and rounds larger ones
# to floats, and ChartMogul's integers are 64-bit. One rule: a number must lie inside the signed
# 64-bit range, else its event is refused (the sender can keep such a value whole as a string).
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)
_FLOAT_LIMIT = 2.0**63  # a float this large was an integer beyond 64 bits or cannot become one
_DATE_FIELDS = ("timestamp", "sentAt", "originalTimestamp")
_FAST_LOADERS = {kind: compile_loader(schema) for kind, schema in SCHEMAS.items()}


@functools.lru_cache(maxsize=64)  # a batch stamps every item with the same received time
def iso_ms(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as Segment writes dates."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_type(item: Any) -> str:
    """The item's `type`, or InvalidPayload when the item is not an event at all."""
    if not isinstance(item, dict):
        raise InvalidPayload("event must be a JSON object")
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidPayload("event has no type", fields={"type": ["Missing data."]})
    return kind


def with_batch_defaults(item: dict[str, Any], batch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a batch's top-level context/integrations into an item (the item's keys win)."""
    merged = item
    for name in ("context", "integrations"):
        outer = batch.get(name)
        if isinstance(outer, dict) and outer:
            inner = item.get(name)
            if merged is item:
                merged = dict(item)
            merged[name] = {**outer, **inner} if isinstance(inner, dict) else dict(outer)
    return merged


def check_size(item: Any) -> None:
    """PayloadTooLarge when one event is over Segment's 32 KB; InvalidPayload (check_structure)
    when it nests too deep or holds a number beyond 64 bits."""
    check_structure(item)
    if len(orjson.dumps(item)) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(f"event is larger than {MAX_EVENT_BYTES} bytes")


def check_structure(item: Any) -> None:
    """InvalidPayload when objects/arrays nest more than MAX_DEPTH levels (event = level 1), or
    a number lies outside the signed 64-bit integer range (docs/reliability.md, "numbers")."""
    # One iterative pass (no Python recursion for a hostile depth), ~1.3 us for an identify.
    stack: list[tuple[Any, int]] = [(item, 1)] if type(item) in (dict, list) else []
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidPayload(
                f"event is nested more than {MAX_DEPTH} levels deep",
                fields={"_schema": [f"Nested more than {MAX_DEPTH} levels."]},
            )
        children = value.values() if type(value) is dict else value
        for child in children:
            kind = type(child)
            if kind is str:  # most values: skip the other tests
                continue
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif (kind is int and not MIN_INT <= child <= MAX_INT) or (
                kind is float and not -_FLOAT_LIMIT < child < _FLOAT_LIMIT
            ):
                raise _out_of_range(item)


def _out_of_range(item: Any) -> InvalidPayload:
    path = ".".join(_number_path(item, MAX_DEPTH) or ["?"])
    return InvalidPayload(
        f"event has a number beyond the 64-bit integer range at {path}; send it as a string",
        fields={path: ["Beyond the signed 64-bit integer range."]},
    )


def _number_path(value: Any, levels: int) -> list[str] | None:
    """Where the first out-of-range number is, as keys and indexes (only after one was seen)."""
    if levels <= 0:
        return None
    pairs = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in pairs:
        if isinstance(child, dict | list):
            below = _number_path(child, levels - 1)
            if below is not None:
                return [str(key)[:40], *below]
        elif _bad_number(child):
            return [str(key)[:40]]
    return None


def _bad_number(value: Any) -> bool:
    kind = type(value)
    if kind is int:
        return not MIN_INT <= value <= MAX_INT
    return kind is float and not -_FLOAT_LIMIT < value < _FLOAT_LIMIT


def prepare(
    item: dict[str, Any],
    kind: str,
    received: datetime,
    sent_at: datetime | None = None,
    *,
    from_segment: bool = False,
) -> dict[str, Any] | None:
    """The validated, completed event; None for a type the relay ignores (track, page, ...)."""
    if kind in IGNORED_TYPES:
        return None
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise InvalidPayload(f"unknown event type {kind[:40]!r}", fields={"type": ["Unknown."]})
    fast = _FAST_LOADERS.get(kind)
    loaded = fast(item) if fast is not None else None
    if loaded is None:  # invalid, or not certainly valid: marshmallow decides and explains
        try:
            loaded = schema.load(item)
        except ValidationError as exc:
            raise InvalidPayload(f"invalid {kind} event", fields=_messages(exc)) from None
    return complete(loaded, received, sent_at, from_segment=from_segment)


def complete(
    event: dict[str, Any],
    received: datetime,
    batch_sent_at: datetime | None = None,
    *,
    from_segment: bool = False,
) -> dict[str, Any]:
    """Assign messageId and timestamp as Segment does; dates become ISO strings; drop writeKey.

    from_segment: the event comes from Segment's servers (webhook, Actions), whose timestamp is
    already corrected; correcting again would shift it by Segment's delivery delay.
    """
    event.pop("writeKey", None)  # a secret: never stored
    if not event.get("messageId"):
        event["messageId"] = str(uuid.uuid4())
    client_time = event.get("timestamp") or event.get("originalTimestamp")
    sent = event.get("sentAt") or batch_sent_at
    timestamp = received
    if from_segment:
        timestamp = event.get("timestamp") or received
    elif isinstance(client_time, datetime):
        timestamp = client_time
        if isinstance(sent, datetime):
            # Segment: timestamp = receivedAt - (sentAt - originalTimestamp), undoing client skew.
            try:
                timestamp = received - (sent - client_time)
            except OverflowError:
                timestamp = client_time
        event["originalTimestamp"] = client_time
    if isinstance(sent, datetime):
        event["sentAt"] = sent
    event["timestamp"] = timestamp
    for name in _DATE_FIELDS:
        value = event.get(name)
        if isinstance(value, datetime):
            event[name] = iso_ms(value)
        elif value is None:
            event.pop(name, None)
    if not (from_segment and isinstance(event.get("receivedAt"), str)):
        event["receivedAt"] = iso_ms(received)
    return event


def _messages(exc: ValidationError) -> dict[str, Any]:
    messages = exc.messages
    return messages if isinstance(messages, dict) else {"_schema": messages}
