"""What the engine asks of a deliverer (API or webhook), and how one is chosen from settings."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cmrelay.errors import ConfigurationError, DeliveryError
from config.settings import Settings

EventStatus = Literal["delivered", "skipped", "failed"]


@dataclass(frozen=True)
class EventResult:
    """What became of one event in a delivery; "failed" ones are dead-lettered as "partial"."""

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
    """Global rate and concurrency limit around each outgoing request (worker/limiter.py)."""

    def acquire(self) -> AbstractContextManager[None]:
        """Block until a rate token and an in-flight slot are ours."""
        ...

    def observe(self, status: int | None, retry_after: float | None) -> None:
        """Feed back each response so 429/503 slow everyone down."""
        ...


class Deliverer(Protocol):
    """Turns the pending events of one entity into ChartMogul calls; raises DeliveryError types.

    `events` are Segment events of one entity sorted by timestamp; `clock` maps attribute path
    to the timestamp of the event that last set it (last-writer-wins).
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


def load_deliverer(settings: Settings, gate: RequestGate) -> Deliverer:
    """Build the deliverer named by CMRELAY_DELIVERER ("module:factory"), else the built-in."""
    if not settings.deliverer:
        return _builtin_deliverer(settings, gate)
    module_name, _, attr = settings.deliverer.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr or "build")
    except (ImportError, AttributeError) as exc:
        message = f"CMRELAY_DELIVERER: cannot load {settings.deliverer}: {exc}"
        raise ConfigurationError(message) from None
    deliverer: Deliverer = factory(settings, gate)
    return deliverer


def _builtin_deliverer(settings: Settings, gate: RequestGate) -> Deliverer:
    """The REST API deliverer (DELIVERY_MODE=api) or the Actions webhook one (webhook)."""
    settings.require_delivery()
    if settings.delivery_mode == "webhook":
        from worker.webhook_deliverer import build as build_webhook

        return build_webhook(settings, gate)
    from worker.api_deliverer import build as build_api

    return build_api(settings, gate)
