"""The API deliverer's pure helpers: the record of one delivery and its operations as JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from worker.mapping import CustomerDelta, Dropped
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


def op(name: str, **fields: Any) -> Operation:
    """One call made, as recorded for metrics and dead letters."""
    return {"op": name, **fields}
