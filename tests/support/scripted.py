"""An in-process Deliverer whose behaviour a test scripts (failures, probe errors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tests.doubles.recording_deliverer import merge, plan_upsert
from worker.delivery.contract import DeliveryOutcome


class ScriptedDeliverer:
    """In-process Deliverer: merges like the recording one; `fail` raises instead when set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]], dict[str, str]]] = []
        self.fail: Callable[[], None] | None = None
        self.probe_error: Exception | None = None
        self.probes = 0

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        self.calls.append((entity, list(events), dict(clock)))
        if self.fail is not None:
            self.fail()
        _, updates = merge(events, clock)
        return DeliveryOutcome(updates, 1)

    def planned_operations(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> Sequence[Mapping[str, Any]]:
        return plan_upsert(entity, events, clock)

    def probe(self) -> None:
        self.probes += 1
        if self.probe_error is not None:
            raise self.probe_error

    def close(self) -> None:
        pass
