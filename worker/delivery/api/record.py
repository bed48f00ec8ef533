"""The API deliverer's pure helpers: operations as JSON-ready dicts, matching answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.mapping import ContactFields, CustomAttribute, CustomerDelta, Dropped

Operation = dict[str, Any]


@dataclass
class DeliveryRecord:
    """One delivery's record: the calls made and the attributes left out (once per field)."""

    ops: list[Operation] = field(default_factory=list)
    dropped: dict[str, Dropped] = field(default_factory=dict)

    def drop(self, items: Iterable[Dropped]) -> None:
        """Note attributes left out; the same field left out twice in one delivery counts once."""
        self.dropped.update((item.field, item) for item in items)


def attrs(custom: Mapping[str, CustomAttribute]) -> list[dict[str, Any]]:
    """Custom attributes as ChartMogul's typed list."""
    return [{"key": a.key, "type": a.type, "value": a.value} for a in custom.values()]


def planned(delta: CustomerDelta) -> list[Operation]:
    """The net change as upserts (pure): what a delivery of `delta` would write."""
    ops: list[Operation] = [
        {"op": "upsert_customer", "external_id": delta.external_id,
         "standard": dict(delta.standard), "custom": attrs(delta.custom)},
    ]  # fmt: skip
    for uid, contact in delta.contacts.items():
        ops.append(
            {"op": "upsert_contact", "customer": delta.external_id, "external_id": uid,
             "standard": dict(contact.standard),
             "custom": {k: a.value for k, a in contact.custom.items()}}
        )  # fmt: skip
    return ops


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
