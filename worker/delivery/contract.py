"""What the pipeline asks of a deliverer (API or webhook), and what a deliverer is built from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import redis

from cmrelay.errors import DeliveryError
from cmrelay.settings import Settings
from worker.mapping import MappingPolicy

EventStatus = Literal["delivered", "unchanged", "skipped", "failed"]


@dataclass(frozen=True)
class EventResult:
    """What became of one event in a delivery; "failed" ones are dead-lettered as "partial",
    "unchanged" ones needed no call (ChartMogul already held everything they say)."""

    message_id: str
    status: EventStatus
    reason: str = ""
    error: DeliveryError | None = None


@dataclass(frozen=True)
class DeliveryOutcome:
    """A successful delivery of one entity's events (possibly with some events failed)."""

    clock_updates: Mapping[str, str]  # attribute path -> timestamp, committed with the drain
    calls: int  # HTTP calls made, for the calls-per-event metric
    results: Sequence[EventResult] = ()  # events not listed count as delivered
    planned_operations: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


class RequestGate(Protocol):
    """Global rate and concurrency limit around each outgoing request (worker.delivery.limiter)."""

    def acquire(self) -> AbstractContextManager[None]:
        """Block until a rate token and an in-flight slot are ours."""
        ...

    def observe(self, status: int | None, retry_after: float | None) -> None:
        """Feed back each response so 429/503 slow everyone down."""
        ...


class Deliverer(Protocol):
    """Turns the pending events of one entity into ChartMogul calls; raises DeliveryError types.

    `events` are Segment events of one entity, sorted by timestamp (API mode) or in arrival
    order (webhook mode); `clock` maps attribute path to the timestamp of the event that last
    set it (last-writer-wins).
    """

    def deliver(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> DeliveryOutcome:
        """Deliver, or raise Retryable/Permanent/DeliveryConfigurationError."""
        ...

    def planned_operations(
        self, entity: str, events: Sequence[dict[str, Any]], clock: Mapping[str, str]
    ) -> Sequence[Mapping[str, Any]]:
        """The calls a delivery would make (pure, for the DLQ entry)."""
        ...

    def probe(self) -> None:
        """A cheap authenticated call (ping); raises DeliveryError while still misconfigured."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class DeliveryContext:
    """What a deliverer is built from: one per worker process, shared by its threads."""

    settings: Settings
    gate: RequestGate
    redis: redis.Redis  # the engine's client (Sentinel-aware); a deliverer never closes it
    policy: MappingPolicy


# A deliverer factory, as named by CMRELAY_DELIVERER ("module:factory").
DelivererFactory = Callable[[DeliveryContext], Deliverer]
