"""The API deliverer's pure helpers: operations as JSON-ready dicts, matching answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.mapping import ContactFields, CustomAttribute, CustomerDelta, Dropped
from worker.mapping.operations import upsert_operations

Operation = dict[str, Any]


@dataclass
class DeliveryRecord:
    """One delivery's record: the calls made and the attributes left out (once per field)."""

    ops: list[Operation] = field(default_factory=list)
    dropped: dict[str, Dropped] = field(default_factory=dict)
    unstored: list[str] = field(default_factory=list)  # sent, answered 2xx, not kept

    def drop(self, items: Iterable[Dropped]) -> None:
        """Note attributes left out; the same field left out twice in one delivery counts once."""
        self.dropped.update((item.field, item) for item in items)


def planned(delta: CustomerDelta) -> list[Operation]:
    """The net change as upserts (pure): what a delivery of `delta` would write."""
    return upsert_operations(
        delta.external_id, delta.standard, delta.custom, delta.contacts.values()
    )


def holds(created: Mapping[str, Any], custom: Mapping[str, CustomAttribute]) -> bool:
    """True when the customer answered carries what we sent (not someone else's older create)."""
    stored = (created.get("attributes") or {}).get("custom") or {}
    return all(key in stored for key in custom)


def op(name: str, **fields: Any) -> Operation:
    """One call made, as recorded for metrics and dead letters."""
    return {"op": name, **fields}


def match_contact(
    contacts: Sequence[Mapping[str, Any]], contact: ContactFields
) -> Mapping[str, Any] | None:
    """The existing contact by external id, else by email when it has no other external id."""
    for entry in contacts:
        if entry.get("external_id") == contact.external_id:
            return entry
    email = contact.standard.get("email")
    if not email:
        return None
    for entry in contacts:
        if entry.get("email") == email and entry.get("external_id") in (None, ""):
            return entry
    return None
