"""Merge one customer's events into a net change, last writer wins per attribute (pure).

Clock strings are canonical UTC (`2024-01-01T10:00:00.000000Z`), so comparing them as text
compares them in time; the engine stores them per attribute path and passes them back in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from worker.mapping.model import ContactFields, CustomAttribute, CustomerDelta, Dropped
from worker.mapping.plan import plan_event
from worker.mapping.policy import MappingPolicy
from worker.mapping.types import iso_utc, parse_timestamp

# Events whose timestamp cannot be read sort first and never overwrite a stored value.
EPOCH = "0001-01-01T00:00:00.000000Z"


def clock_time(value: Any) -> str:
    """The canonical clock string for an event timestamp (or a stored clock value)."""
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        return EPOCH
    return iso_utc(moment)


class _Merger:
    def __init__(self, clock: Mapping[str, str]) -> None:
        self.stored = {path: clock_time(value) for path, value in clock.items()}
        self.updates: dict[str, str] = {}

    def apply(self, path: str, when: str, target: dict[str, Any], key: str, value: Any) -> None:
        stored = self.stored.get(path)
        if stored is not None and stored > when:
            return  # a newer event already set this attribute: an old one must not overwrite
        target[key] = value
        self.updates[path] = when


def merge_events(
    customer_external_id: str,
    events: Sequence[Mapping[str, Any]],
    clock: Mapping[str, str],
    policy: MappingPolicy,
) -> CustomerDelta:
    """The net change of these events, each attribute from its newest event."""
    merger = _Merger(clock)
    standard: dict[str, Any] = {}
    custom: dict[str, CustomAttribute] = {}
    contact_std: dict[str, dict[str, Any]] = {}
    contact_custom: dict[str, dict[str, CustomAttribute]] = {}
    dropped: list[Dropped] = []
    ordered = sorted(
        (e for e in events if isinstance(e, Mapping)),
        key=lambda e: clock_time(e.get("timestamp")),
    )  # sorted() is stable: equal timestamps keep arrival order, so the later arrival wins
    for event in ordered:
        when = clock_time(event.get("timestamp"))
        plan = plan_event(event, customer_external_id, policy)
        dropped += plan.dropped
        if plan.customer is not None:
            for field, value in plan.customer.standard.items():
                merger.apply(f"std:{field}", when, standard, field, value)
            for key, attr in plan.customer.custom.items():
                merger.apply(f"custom:{key}", when, custom, key, attr)
        if plan.contact is not None:
            uid = plan.contact.external_id
            std = contact_std.setdefault(uid, {})
            cus = contact_custom.setdefault(uid, {})
            for field, value in plan.contact.standard.items():
                merger.apply(f"contact:{uid}:std:{field}", when, std, field, value)
            for key, attr in plan.contact.custom.items():
                merger.apply(f"contact:{uid}:custom:{key}", when, cus, key, attr)
    contacts = {
        uid: ContactFields(uid, contact_std[uid], contact_custom[uid]) for uid in contact_std
    }
    return CustomerDelta(
        external_id=customer_external_id,
        standard=standard,
        custom=custom,
        contacts=contacts,
        clock_updates=merger.updates,
        message_ids=tuple(str(e.get("messageId", "")) for e in ordered),
        dropped=tuple(dropped),
    )
